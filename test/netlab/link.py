#!/usr/bin/env python3
"""A user-space link between two TUN devices, for the network lab (docs/testing.md).

Usage: link.py NAME_A NAME_B. Creates both TUN devices in the current network namespace
(the caller moves them where they belong), prints "ready", then forwards every IP packet
from one to the other. Commands on stdin, one a line, change the link at once:
  loss P      drop each packet with probability P (0..1), both directions
  delay MS    hold each packet MS milliseconds, both directions (order kept)
  cut         drop everything (an outage); `restore` ends it
  restore
Each command is answered with "ok" on stdout. The link ends when stdin closes (the devices
vanish with it).
"""
import fcntl, heapq, os, random, select, struct, sys, time

TUNSETIFF, IFF_TUN, IFF_NO_PI = 0x400454CA, 0x0001, 0x1000


def tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def main():
    a, b = tun(sys.argv[1]), tun(sys.argv[2])
    other = {a: b, b: a}
    loss, delay, cut = 0.0, 0.0, False
    held, seq, command = [], 0, b""
    print("ready", flush=True)
    while True:
        timeout = max(0.0, held[0][0] - time.monotonic()) if held else None
        ready, _, _ = select.select([a, b, 0], [], [], timeout)
        for fd in ready:
            if fd == 0:
                chunk = os.read(0, 4096)
                if not chunk:
                    return
                command += chunk
                while b"\n" in command:
                    line, command = command.split(b"\n", 1)
                    words = line.decode().split()
                    if words[:1] == ["loss"]:
                        loss = float(words[1])
                    elif words[:1] == ["delay"]:
                        delay = float(words[1]) / 1000
                    elif words[:1] in (["cut"], ["restore"]):
                        cut = words[0] == "cut"
                    print("ok", flush=True)
                continue
            for _ in range(64):  # drain what is there, a burst at a time
                try:
                    packet = os.read(fd, 65536)
                except BlockingIOError:
                    break
                if cut or (loss and random.random() < loss):
                    continue
                seq += 1
                heapq.heappush(held, (time.monotonic() + delay, seq, other[fd], packet))
        now = time.monotonic()
        while held and held[0][0] <= now:
            _, _, fd, packet = heapq.heappop(held)
            try:
                os.write(fd, packet)
            except OSError:
                pass  # the device is down (a home that left this uplink)


if __name__ == "__main__":
    main()
