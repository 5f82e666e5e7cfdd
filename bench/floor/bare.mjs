// The bare floor: a relay with no storage (room.mjs).
import { floorRoom, floorWorker } from "./room.mjs";

export class Room extends floorRoom(false) {}
export default floorWorker();
