// The durable floor: the bare one plus durable slots (room.mjs).
import { floorRoom, floorWorker } from "./room.mjs";

export class Room extends floorRoom(true) {}
export default floorWorker();
