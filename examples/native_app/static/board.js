// Long-polls /api/poll and appends new messages; posts with fetch().
let cursor = 0;
const list = document.getElementById("messages");

function show(messages) {
  for (const m of messages) {
    const li = document.createElement("li");
    const who = document.createElement("b");
    who.textContent = m.author;
    li.append(who, document.createTextNode(m.text));
    list.append(li);
    cursor = Math.max(cursor, m.id);
  }
}

async function poll() {
  for (;;) {
    try {
      const r = await fetch(`/api/poll?cursor=${cursor}`, {cache: "no-store"});
      if (r.ok) show((await r.json()).messages);
      else await new Promise(ok => setTimeout(ok, 1000));
    } catch (e) {
      await new Promise(ok => setTimeout(ok, 1000));
    }
  }
}

document.getElementById("post").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const body = {author: form.author.value || "anonymous", text: form.text.value};
  await fetch("/api/messages", {method: "POST", headers: {"Content-Type": "application/json"},
                                body: JSON.stringify(body)});
  form.text.value = "";
});

fetch("/api/messages").then(r => r.json()).then(d => { show(d.messages); poll(); });
