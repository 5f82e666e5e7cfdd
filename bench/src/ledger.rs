//! Relayed messages checked for content and room. Every soak message carries a [`Probe`]: the
//! room it was sent in, its sender's client id and a sequence number per direction. The
//! receiver checks each one against what was sent ([`Direction`]), which tells a delivery into
//! another room, an echo to the sender, a wrong `from`, a duplicate, a reordering and, when the
//! call ends, a loss.
//!
//! A message still in flight when a socket goes down (dropped on purpose, or killed with the
//! server) may be lost without any fault of the server: such messages are marked disrupted and
//! a loss of one is counted apart from the others.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// The `data` of every soak message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    pub room: String,
    /// The sender's client id.
    pub from: String,
    pub seq: u64,
    /// Filler up to the message size; not checked.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pad: String,
}

impl Probe {
    /// The probe as the `data` of a message.
    pub fn data(&self) -> Box<RawValue> {
        // A probe is strings and a number: serializing it cannot fail.
        serde_json::value::to_raw_value(self).unwrap_or_else(|_| RawValue::NULL.to_owned())
    }
}

/// A message sent and not yet received.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sent {
    at_us: u64,
    /// When a socket of the room went down while it was in flight.
    disrupted_at_us: Option<u64>,
}

/// One direction of one call (first peer → second, or back): what was sent, what is still
/// in flight.
#[derive(Debug, Default)]
pub struct Direction {
    next_seq: u64,
    in_flight: BTreeMap<u64, Sent>,
}

/// What the sequence number of a received message says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arrival {
    /// Sent and not received before. `reordered`: an earlier message of this direction, not
    /// disrupted, is still in flight.
    Fresh { latency_us: u64, reordered: bool },
    /// Received before.
    Duplicate,
    /// Never sent.
    Unknown,
}

/// Messages of one direction that never arrived.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Losses {
    /// In flight when a socket went down; each with the time it went down.
    pub disrupted: u64,
    /// Lost with every socket up.
    pub undisrupted: u64,
}

impl Direction {
    /// Registers a message sent at `now_us`; returns its sequence number.
    pub fn send(&mut self, now_us: u64) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.in_flight.insert(
            seq,
            Sent {
                at_us: now_us,
                disrupted_at_us: None,
            },
        );
        seq
    }

    /// A socket of the room went down: whatever is in flight may be lost.
    pub fn disrupt(&mut self, now_us: u64) {
        for sent in self.in_flight.values_mut() {
            sent.disrupted_at_us.get_or_insert(now_us);
        }
    }

    pub fn receive(&mut self, seq: u64, now_us: u64) -> Arrival {
        let Some(sent) = self.in_flight.remove(&seq) else {
            return if seq < self.next_seq {
                Arrival::Duplicate
            } else {
                Arrival::Unknown
            };
        };
        let reordered = self
            .in_flight
            .range(..seq)
            .any(|(_, s)| s.disrupted_at_us.is_none());
        Arrival::Fresh {
            latency_us: now_us.saturating_sub(sent.at_us),
            reordered,
        }
    }

    /// Messages in flight that no socket drop can excuse.
    pub fn undisrupted_in_flight(&self) -> usize {
        self.in_flight
            .values()
            .filter(|s| s.disrupted_at_us.is_none())
            .count()
    }

    /// Ends the direction: everything still in flight is lost. Returns the counts and the
    /// disruption time of each disrupted loss.
    pub fn settle(&mut self) -> (Losses, Vec<u64>) {
        let mut losses = Losses::default();
        let mut times = Vec::new();
        for sent in std::mem::take(&mut self.in_flight).into_values() {
            match sent.disrupted_at_us {
                Some(at) => {
                    losses.disrupted += 1;
                    times.push(at);
                }
                None => losses.undisrupted += 1,
            }
        }
        (losses, times)
    }
}

/// Who is receiving: the room it is in, its own client id and its peer's.
#[derive(Debug, Clone, Copy)]
pub struct Receiver<'a> {
    pub room: &'a str,
    pub me: &'a str,
    pub peer: &'a str,
}

/// The verdict on one relayed `message` frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    Fresh {
        latency_us: u64,
        reordered: bool,
    },
    Duplicate,
    /// Sent in another room.
    CrossRoom {
        room: String,
    },
    /// Sent by the receiver itself.
    Echo,
    /// The frame's `from` or the probe's sender is not the peer.
    WrongSender,
    /// A sequence number that was never sent.
    Unknown,
    /// `data` is not a probe.
    Malformed,
}

impl Delivery {
    /// The label of a delivery that should never happen; `None` for a fresh one.
    pub fn fault(&self) -> Option<&'static str> {
        match self {
            Delivery::Fresh { .. } => None,
            Delivery::Duplicate => Some("duplicate"),
            Delivery::CrossRoom { .. } => Some("cross-room"),
            Delivery::Echo => Some("echoed to sender"),
            Delivery::WrongSender => Some("wrong sender"),
            Delivery::Unknown => Some("never sent"),
            Delivery::Malformed => Some("malformed"),
        }
    }
}

/// Checks a relayed message (`from` of the frame, `data` as received) against the direction
/// it should belong to.
pub fn check(
    to: Receiver<'_>,
    from: &str,
    data: &str,
    dir: &mut Direction,
    now_us: u64,
) -> Delivery {
    let Ok(probe) = serde_json::from_str::<Probe>(data) else {
        return Delivery::Malformed;
    };
    if probe.room != to.room {
        return Delivery::CrossRoom { room: probe.room };
    }
    if probe.from == to.me {
        return Delivery::Echo;
    }
    if probe.from != to.peer || from != probe.from {
        return Delivery::WrongSender;
    }
    match dir.receive(probe.seq, now_us) {
        Arrival::Fresh {
            latency_us,
            reordered,
        } => Delivery::Fresh {
            latency_us,
            reordered,
        },
        Arrival::Duplicate => Delivery::Duplicate,
        Arrival::Unknown => Delivery::Unknown,
    }
}

/// Counts of every delivery verdict over a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Deliveries {
    pub sent: u64,
    pub delivered: u64,
    pub reordered: u64,
    pub duplicate: u64,
    pub cross_room: u64,
    pub echoed: u64,
    pub wrong_sender: u64,
    pub never_sent: u64,
    pub malformed: u64,
    /// Lost while a socket of the room was down.
    pub lost_disrupted: u64,
    /// Lost with both sockets up.
    pub lost_undisrupted: u64,
}

impl Deliveries {
    pub fn add(&mut self, d: &Delivery) {
        match d {
            Delivery::Fresh { reordered, .. } => {
                self.delivered += 1;
                self.reordered += u64::from(*reordered);
            }
            Delivery::Duplicate => self.duplicate += 1,
            Delivery::CrossRoom { .. } => self.cross_room += 1,
            Delivery::Echo => self.echoed += 1,
            Delivery::WrongSender => self.wrong_sender += 1,
            Delivery::Unknown => self.never_sent += 1,
            Delivery::Malformed => self.malformed += 1,
        }
    }

    pub fn add_losses(&mut self, l: Losses) {
        self.lost_disrupted += l.disrupted;
        self.lost_undisrupted += l.undisrupted;
    }

    pub fn merge(&mut self, o: &Deliveries) {
        self.sent += o.sent;
        self.delivered += o.delivered;
        self.reordered += o.reordered;
        self.duplicate += o.duplicate;
        self.cross_room += o.cross_room;
        self.echoed += o.echoed;
        self.wrong_sender += o.wrong_sender;
        self.never_sent += o.never_sent;
        self.malformed += o.malformed;
        self.lost_disrupted += o.lost_disrupted;
        self.lost_undisrupted += o.lost_undisrupted;
    }

    /// Deliveries into the wrong room or to the wrong socket, and repeats: the criterion
    /// "no message is delivered to another room or twice".
    pub fn misdelivered(&self) -> u64 {
        self.duplicate
            + self.cross_room
            + self.echoed
            + self.wrong_sender
            + self.never_sent
            + self.malformed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOM: &str = "b1-soak-3-0";
    const A: &str = "aaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbb";

    fn at_b() -> Receiver<'static> {
        Receiver {
            room: ROOM,
            me: B,
            peer: A,
        }
    }

    fn data(room: &str, from: &str, seq: u64) -> String {
        Probe {
            room: room.into(),
            from: from.into(),
            seq,
            pad: "xx".into(),
        }
        .data()
        .get()
        .to_owned()
    }

    #[test]
    fn a_probe_frame_is_a_message_with_the_probe_as_data() {
        let data = Probe {
            room: ROOM.into(),
            from: A.into(),
            seq: 7,
            pad: String::new(),
        }
        .data();
        assert_eq!(
            crate::payload::frame(&data),
            r#"{"type":"message","data":{"room":"b1-soak-3-0","from":"aaaaaaaaaaaaaaaa","seq":7}}"#
        );
    }

    #[test]
    fn fresh_messages_in_order_and_their_latency() {
        let mut dir = Direction::default();
        assert_eq!(dir.send(1_000), 0);
        assert_eq!(dir.send(2_000), 1);
        assert_eq!(
            check(at_b(), A, &data(ROOM, A, 0), &mut dir, 1_500),
            Delivery::Fresh {
                latency_us: 500,
                reordered: false
            }
        );
        assert_eq!(
            check(at_b(), A, &data(ROOM, A, 1), &mut dir, 2_250),
            Delivery::Fresh {
                latency_us: 250,
                reordered: false
            }
        );
        assert_eq!(dir.undisrupted_in_flight(), 0);
        assert_eq!(dir.settle().0, Losses::default());
    }

    #[test]
    fn a_second_delivery_is_a_duplicate_and_an_unsent_number_is_unknown() {
        let mut dir = Direction::default();
        dir.send(0);
        assert!(matches!(
            check(at_b(), A, &data(ROOM, A, 0), &mut dir, 1),
            Delivery::Fresh { .. }
        ));
        assert_eq!(
            check(at_b(), A, &data(ROOM, A, 0), &mut dir, 2),
            Delivery::Duplicate
        );
        assert_eq!(
            check(at_b(), A, &data(ROOM, A, 5), &mut dir, 3),
            Delivery::Unknown
        );
    }

    #[test]
    fn another_rooms_message_is_cross_room_even_with_a_known_number() {
        let mut dir = Direction::default();
        dir.send(0);
        assert_eq!(
            check(at_b(), A, &data("b1-soak-4-0", A, 0), &mut dir, 1),
            Delivery::CrossRoom {
                room: "b1-soak-4-0".into()
            }
        );
        // The message of this room is still expected.
        assert_eq!(dir.undisrupted_in_flight(), 1);
    }

    #[test]
    fn echoes_wrong_senders_and_garbage() {
        let mut dir = Direction::default();
        dir.send(0);
        assert_eq!(
            check(at_b(), B, &data(ROOM, B, 0), &mut dir, 1),
            Delivery::Echo
        );
        let other = "cccccccccccccccc";
        assert_eq!(
            check(at_b(), other, &data(ROOM, other, 0), &mut dir, 1),
            Delivery::WrongSender
        );
        // The frame says A, the probe says otherwise.
        assert_eq!(
            check(at_b(), A, &data(ROOM, other, 0), &mut dir, 1),
            Delivery::WrongSender
        );
        assert_eq!(
            check(at_b(), other, &data(ROOM, A, 0), &mut dir, 1),
            Delivery::WrongSender
        );
        assert_eq!(
            check(at_b(), A, r#""just a string""#, &mut dir, 1),
            Delivery::Malformed
        );
        assert_eq!(
            check(at_b(), A, r#"{"room":"r","seq":1}"#, &mut dir, 1),
            Delivery::Malformed
        );
    }

    #[test]
    fn overtaking_an_undisrupted_message_is_a_reordering() {
        let mut dir = Direction::default();
        dir.send(0);
        dir.send(0);
        assert_eq!(
            dir.receive(1, 5),
            Arrival::Fresh {
                latency_us: 5,
                reordered: true
            }
        );
        // Overtaking a message that was in flight across a drop is no reordering.
        let mut dir = Direction::default();
        dir.send(0);
        dir.disrupt(3);
        dir.send(4);
        assert_eq!(
            dir.receive(1, 5),
            Arrival::Fresh {
                latency_us: 1,
                reordered: false
            }
        );
    }

    #[test]
    fn losses_are_split_by_disruption() {
        let mut dir = Direction::default();
        dir.send(10);
        dir.send(20);
        dir.disrupt(25);
        // A later disruption does not move the first mark.
        dir.disrupt(40);
        dir.send(30);
        assert_eq!(dir.undisrupted_in_flight(), 1);
        let (losses, times) = dir.settle();
        assert_eq!(
            losses,
            Losses {
                disrupted: 2,
                undisrupted: 1
            }
        );
        assert_eq!(times, vec![25, 25]);
        // Settled: nothing is in flight any more, and numbering goes on.
        assert_eq!(dir.settle().0, Losses::default());
        assert_eq!(dir.send(50), 3);
    }

    #[test]
    fn deliveries_count_every_verdict() {
        let mut d = Deliveries::default();
        for v in [
            Delivery::Fresh {
                latency_us: 1,
                reordered: true,
            },
            Delivery::Fresh {
                latency_us: 1,
                reordered: false,
            },
            Delivery::Duplicate,
            Delivery::CrossRoom { room: "x".into() },
            Delivery::Echo,
            Delivery::WrongSender,
            Delivery::Unknown,
            Delivery::Malformed,
        ] {
            d.add(&v);
        }
        d.add_losses(Losses {
            disrupted: 2,
            undisrupted: 1,
        });
        assert_eq!((d.delivered, d.reordered), (2, 1));
        assert_eq!(d.misdelivered(), 6);
        assert_eq!((d.lost_disrupted, d.lost_undisrupted), (2, 1));
        let mut total = Deliveries::default();
        total.merge(&d);
        total.merge(&d);
        assert_eq!(total.misdelivered(), 12);
        assert_eq!(Delivery::Duplicate.fault(), Some("duplicate"));
        assert_eq!(
            Delivery::Fresh {
                latency_us: 0,
                reordered: false
            }
            .fault(),
            None
        );
    }
}
