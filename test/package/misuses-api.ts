// Must fail to type-check, with an error on each line marked `// error TS…` and nowhere else:
// misspelled events, fields and options are caught by the package's declarations.
import { connect } from "duet-signaling";
import { Negotiator } from "duet-signaling/negotiation";

const duet = connect("my-room", { baseUrl: "https://duet.example" });
duet.addEventListener("redy", () => {}); // error TS2345
duet.addEventListener("ready", (e) => console.log(e.detail.initiater)); // error TS2551
duet.addEventListener("close", (e) => console.log(e.detail.cod)); // error TS2551
duet.addEventListener("message", (e) => {
  const text: string = e.detail.data; // error TS2322
  console.log(text);
});
duet.addEventListener("ice-servers", (e) => console.log(e.detail.expiresIn)); // error TS2339
duet.addEventListener("refused", (e) => console.log(e.detail.retryAftr)); // error TS2551
duet.addEventListener("e2e-confirmed", (e) => console.log(e.detail.peerId)); // error TS2551
connect("my-room", { pingInterval: 1000 }); // error TS2561
const sent: string = duet.send("hello"); // error TS2322
new Negotiator(new RTCPeerConnection(), { polite: "yes", send: () => {} }); // error TS2322
console.log(sent);
