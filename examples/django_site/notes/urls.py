from django.urls import path

from . import views

app_name = "notes"
urlpatterns = [
    path("", views.note_list, name="index"),
    path("export.csv", views.export_csv, name="export"),
    path("download/", views.download, name="download"),
    path("upload/", views.upload, name="upload"),
]
