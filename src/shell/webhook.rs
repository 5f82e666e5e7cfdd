//! POSTs one webhook event, signed, with a timeout. What the outcome changes is the core's
//! decision (`RoomEvent::Delivery`); this only reports it.

use super::platform::{now_ms, post_request};
use crate::webhook::{signature, Outcome, Pending, WebhookSettings, SIGNATURE_HEADER, TIMEOUT_MS};
use futures_util::future::{select, Either};
use std::pin::pin;
use std::time::Duration;
use worker::{AbortController, Delay, Fetch, Request};

pub async fn post(settings: &WebhookSettings, event: &Pending) -> Outcome {
    let Ok(request) = request(settings, event) else {
        return Outcome::Network;
    };
    let controller = AbortController::default();
    let signal = controller.signal();
    let send = pin!(async {
        match Fetch::Request(request).send_with_signal(&signal).await {
            Ok(response) => match response.status_code() {
                200..=299 => Outcome::Delivered,
                status => Outcome::Status(status),
            },
            Err(_) => Outcome::Network,
        }
    });
    let timeout = pin!(Delay::from(Duration::from_millis(TIMEOUT_MS)));
    match select(send, timeout).await {
        Either::Left((outcome, _)) => outcome,
        Either::Right(_) => {
            controller.abort();
            Outcome::Timeout
        }
    }
}

fn request(settings: &WebhookSettings, event: &Pending) -> worker::Result<Request> {
    let signed = signature(&settings.secret, now_ms() / 1000, &event.body);
    let headers = [
        ("Content-Type", "application/json"),
        ("User-Agent", "Duet-Webhooks/1"),
        (SIGNATURE_HEADER, signed.as_str()),
    ];
    post_request(&settings.url, &headers, &event.body)
}
