// The board over a WebSocket: messages arrive as {"messages": [...]}; sending posts one.
const list = document.getElementById("messages");
const status = document.getElementById("status");
const shown = new Set();
let socket = null;

function show(messages) {
  for (const m of messages) {
    if (shown.has(m.id)) continue;
    shown.add(m.id);
    const li = document.createElement("li");
    const who = document.createElement("b");
    who.textContent = m.author;
    li.append(who, document.createTextNode(m.text));
    list.append(li);
  }
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  socket = new WebSocket(`${scheme}//${location.host}/api/live`);
  socket.onopen = () => { status.textContent = "connected"; };
  socket.onmessage = (event) => show(JSON.parse(event.data).messages);
  socket.onclose = () => {
    status.textContent = "disconnected; reconnecting…";
    setTimeout(connect, 1000);
  };
}

document.getElementById("post").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target;
  if (!socket || socket.readyState !== WebSocket.OPEN) return;
  socket.send(JSON.stringify({author: form.author.value || "anonymous",
                              text: form.text.value}));
  form.text.value = "";
});

connect();
