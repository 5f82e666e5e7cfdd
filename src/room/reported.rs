//! A client's `report` of its call's outcome: a log line, and with webhooks a `call.connected`
//! or `call.failed` event marked as reported by the client. A slot may report
//! [`MAX_REPORTS_PER_SLOT`] times; the count is stored with it.

use super::{Ctx, RoomState};
use crate::effect::{Effect, LogEvent};
use crate::protocol::ErrorCode;
use crate::report::{Outcome, Report, MAX_REPORTS_PER_SLOT};
use crate::webhook::Hook;

impl RoomState {
    pub(super) fn reported(&mut self, ctx: Ctx, conn: &str, report: Report) -> Vec<Effect> {
        let Some(index) = self.index_of_conn(conn) else {
            return Vec::new();
        };
        let slot = &mut self.slots[index];
        if slot.reports >= MAX_REPORTS_PER_SLOT {
            return vec![Effect::Send {
                conn: conn.to_owned(),
                frame: ErrorCode::RateLimited.to_frame(),
            }];
        }
        slot.reports += 1;
        let client_id = slot.client_id.clone();
        let by = self.causer(&client_id);
        let event = match report.outcome {
            Outcome::Connected { .. } => "call-connected",
            Outcome::Failed => "call-failed",
        };
        let log = Effect::Log(LogEvent {
            client_id: Some(client_id.clone()),
            reason: Some(report.outcome.summary()),
            ..LogEvent::room(event, &self.name)
        });
        self.emit(ctx, Hook::CallReported { client_id, report }, by);
        vec![log]
    }
}
