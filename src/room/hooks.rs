//! Lifecycle webhooks as part of the room's transitions: each decision enqueues its events in
//! the stored outbox (so an eviction or a restart cannot lose one), the call's duration is
//! kept up to date, and a delivery's outcome advances or postpones the outbox's head.

use super::{Ctx, Presence, RoomState};
use crate::effect::{Effect, LogEvent};
use crate::webhook::{retry_delay, Hook, Outcome, Pending, Session, GIVE_UP_AFTER_MS, MAX_OUTBOX};

impl RoomState {
    /// Enqueues `hook` if webhooks are on, in the session of the current call.
    pub(super) fn emit(&mut self, ctx: Ctx, hook: Hook) {
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
        });
        session.seq += 1;
        let id = format!("{}-{}", session.id, session.seq);
        let body = hook.body(&id, &self.name, ctx.now);
        self.outbox.push(Pending {
            id,
            at: ctx.now,
            body,
            attempts: 0,
            next_at: ctx.now,
        });
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
        if self.slots.is_empty() {
            if let Some(session) = self.session.clone() {
                self.emit(
                    ctx,
                    Hook::RoomEnded {
                        started_at: session.started_at,
                        ended_at: ctx.now,
                        call_ms: session.call_ms,
                    },
                );
                self.session = None;
            }
        }
        let excess = self.outbox.len().saturating_sub(MAX_OUTBOX);
        self.outbox.drain(..excess);
        (0..excess).map(|_| self.dropped("outbox-full")).collect()
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
        if ctx.now.saturating_sub(head.at) >= GIVE_UP_AFTER_MS {
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
