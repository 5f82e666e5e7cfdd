//! Lifecycle webhooks as part of the room's transitions: each decision enqueues its events in
//! the stored outbox (so an eviction or a restart cannot lose one), the call's duration is
//! kept up to date, and a delivery's outcome advances or postpones the outbox's head.

use super::{Ctx, Presence, RoomState};
use crate::effect::{Effect, LogEvent};
use crate::webhook::{
    retry_delay, Hook, Outcome, Pending, Session, GIVE_UP_AFTER_MS, LONE_GIVE_UP_AFTER_MS,
    MAX_OUTBOX, MAX_OUTBOX_BYTES,
};

impl RoomState {
    /// Enqueues `hook`, caused by `by` (a [`RoomState::causer`]), if webhooks are on, in the
    /// session of the current call.
    pub(super) fn emit(&mut self, ctx: Ctx, hook: Hook, by: String) {
        if ctx.config.webhook.is_none() {
            return;
        }
        let seed = self.slots.first().map_or(&self.name, |s| &s.client_id);
        let session = self.session.get_or_insert_with(|| Session {
            id: seed.clone(),
            started_at: ctx.now,
            seq: 0,
            call_ms: 0,
            both_since: None,
            joined_by_another: false,
        });
        if let Hook::PeerJoined { client_id, .. } = &hook {
            // The session is named after its first client.
            session.joined_by_another |= *client_id != session.id;
        }
        session.seq += 1;
        let id = format!("{}-{}", session.id, session.seq);
        let body = hook.body(&id, &self.name, ctx.now);
        self.outbox.push(Pending {
            id,
            at: ctx.now,
            body,
            attempts: 0,
            next_at: ctx.now,
            by,
            lone: false,
        });
    }

    /// Who an event about `client_id` is charged to: its budget key, else the client id.
    pub(super) fn causer(&self, client_id: &str) -> String {
        let slot = self.slots.iter().find(|s| s.client_id == client_id);
        match slot.and_then(|s| s.key.clone()) {
            Some(key) => key,
            None => client_id.to_owned(),
        }
    }

    /// Drops events until the outbox is within [`MAX_OUTBOX`] and [`MAX_OUTBOX_BYTES`]: each
    /// time the oldest of whoever's events take the most bytes (on a tie, whoever caused the
    /// newest), so one participant's churn never costs another their events. Returns how
    /// many were dropped.
    fn trim_outbox(&mut self) -> usize {
        let mut bytes: usize = self.outbox.iter().map(Pending::stored_len).sum();
        let mut dropped = 0;
        while self.outbox.len() > MAX_OUTBOX || bytes > MAX_OUTBOX_BYTES {
            let Some(heaviest) = heaviest_causer(&self.outbox) else {
                break;
            };
            let Some(index) = self.outbox.iter().position(|p| p.by == heaviest) else {
                break;
            };
            bytes -= self.outbox.remove(index).stored_len();
            dropped += 1;
        }
        dropped
    }

    /// After every decision: the call's duration, `room.ended` when the room became empty,
    /// and the outbox's bound. Without webhooks, whatever an earlier configuration left is
    /// dropped, so nothing of them stays stored.
    pub(super) fn account(&mut self, ctx: Ctx) -> Vec<Effect> {
        if ctx.config.webhook.is_none() {
            self.session = None;
            let dropped = std::mem::take(&mut self.outbox).len();
            return (dropped > 0)
                .then(|| self.dropped("disabled"))
                .into_iter()
                .collect();
        }
        self.count_call(ctx);
        if self.slots.is_empty() {
            self.end_session(ctx, None);
        }
        let dropped = self.trim_outbox();
        (0..dropped).map(|_| self.dropped("outbox-full")).collect()
    }

    /// Adds the stretch during which both slots were connected to the call's duration, once
    /// it ends.
    pub(super) fn count_call(&mut self, ctx: Ctx) {
        let both =
            self.slots.len() == 2 && self.slots.iter().all(|s| s.presence == Presence::Connected);
        if let Some(session) = &mut self.session {
            match (both, session.both_since) {
                (true, None) => session.both_since = Some(ctx.now),
                (false, Some(since)) => {
                    session.call_ms += ctx.now.saturating_sub(since);
                    session.both_since = None;
                }
                _ => {}
            }
        }
    }

    /// The session's `room.ended` now, with `reason` (`None`: the room simply emptied).
    pub(super) fn end_session(&mut self, ctx: Ctx, reason: Option<&'static str>) {
        let Some(session) = self.session.clone() else {
            return;
        };
        // Whoever left last ended it.
        let by = self.outbox.last().map(|p| p.by.clone()).unwrap_or_default();
        let ended = Hook::RoomEnded {
            started_at: session.started_at,
            ended_at: ctx.now,
            call_ms: session.call_ms,
            reason,
        };
        self.emit(ctx, ended, by);
        if !session.joined_by_another {
            let prefix = format!("{}-", session.id);
            for pending in &mut self.outbox {
                pending.lone |= pending.id.starts_with(&prefix);
            }
        }
        self.session = None;
    }

    /// The outcome of delivering `id`. Only the head is ever in flight; an outcome for any
    /// other event (one dropped meanwhile) changes nothing.
    pub(super) fn delivered(&mut self, ctx: Ctx, id: &str, outcome: Outcome) -> Vec<Effect> {
        let Some(head) = self.outbox.first_mut().filter(|p| p.id == id) else {
            return Vec::new();
        };
        if outcome == Outcome::Delivered {
            self.outbox.remove(0);
            return Vec::new();
        }
        head.attempts = head.attempts.saturating_add(1);
        let give_up = match head.lone {
            true => LONE_GIVE_UP_AFTER_MS,
            false => GIVE_UP_AFTER_MS,
        };
        if ctx.now.saturating_sub(head.at) >= give_up {
            self.outbox.remove(0);
            return vec![self.dropped("expired")];
        }
        head.next_at = ctx.now.saturating_add(retry_delay(head.attempts));
        vec![Effect::Log(LogEvent {
            reason: Some(outcome.reason()),
            ..LogEvent::room("webhook-failed", &self.name)
        })]
    }

    fn dropped(&self, reason: &'static str) -> Effect {
        Effect::Log(LogEvent {
            reason: Some(reason),
            ..LogEvent::room("webhook-dropped", &self.name)
        })
    }
}

/// The causer whose waiting events take the most bytes; on a tie, the one who caused the
/// newest of them.
fn heaviest_causer(outbox: &[Pending]) -> Option<String> {
    let mut totals: Vec<(&str, usize, usize)> = Vec::new();
    for (index, pending) in outbox.iter().enumerate() {
        match totals.iter_mut().find(|(by, _, _)| *by == pending.by) {
            Some(total) => {
                total.1 += pending.stored_len();
                total.2 = index;
            }
            None => totals.push((&pending.by, pending.stored_len(), index)),
        }
    }
    totals
        .into_iter()
        .max_by_key(|&(_, bytes, newest)| (bytes, newest))
        .map(|(by, _, _)| by.to_owned())
}
