import csv
import hashlib
from pathlib import Path

from django.contrib import messages
from django.http import FileResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_safe

from .forms import NoteForm, UploadForm
from .models import Note

DOWNLOAD_FILE = Path(__file__).resolve().parent / "data" / "about-wsgiloop.txt"


@require_http_methods(["GET", "HEAD", "POST"])
def note_list(request):
    """The notes, newest first, and a ModelForm to add one."""
    if request.method == "POST":
        form = NoteForm(request.POST)
        if form.is_valid():
            note = form.save()
            messages.success(request, f"Saved note “{note.title}”.")
            return redirect("notes:index")
    else:
        form = NoteForm()
    notes = Note.objects.all()[:50]
    return render(request, "notes/note_list.html", {"form": form, "notes": notes})


class _Line:
    """A write-only file for csv.writer: ``write`` returns the text instead of storing it."""

    def write(self, text: str) -> str:
        return text


@require_safe
def export_csv(request):
    """All notes as CSV, streamed row by row straight from the database cursor."""
    writer = csv.writer(_Line())

    def rows():
        yield writer.writerow(["id", "created", "title", "body"])
        for note in Note.objects.order_by("id").iterator(chunk_size=200):
            yield writer.writerow([note.id, note.created.isoformat(), note.title, note.body])

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="notes.csv"'
    return response


@require_safe
def download(request):
    """A file from this app, sent with FileResponse (wsgi.file_wrapper when the server has it)."""
    return FileResponse(DOWNLOAD_FILE.open("rb"), as_attachment=True,
                        content_type="text/plain; charset=utf-8")


@require_http_methods(["GET", "HEAD", "POST"])
def upload(request):
    """An upload form; a valid POST answers with the file's name, size and SHA-256."""
    if request.method == "POST":
        form = UploadForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            digest = hashlib.sha256()
            for chunk in upload.chunks():
                digest.update(chunk)
            return JsonResponse({"name": upload.name, "size": upload.size,
                                 "sha256": digest.hexdigest(),
                                 "spooled_to_disk": hasattr(upload, "temporary_file_path")})
        return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
    return render(request, "notes/upload.html", {"form": UploadForm()})
