//! Join tickets for a server with `JOIN_SECRET` (`docs/access.md`): none, a fixed string, or an
//! async provider called before every connect, so a long call outlives its first ticket.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

type Fetch = dyn Fn() -> Pin<Box<dyn Future<Output = Result<String, String>> + Send>> + Send + Sync;

/// Where the [`crate::Client`]'s join tickets come from.
#[derive(Clone, Default)]
pub enum Ticket {
    /// The server needs none.
    #[default]
    None,
    /// The same ticket for every connect. After `ticket-expired` the client stops.
    Fixed(String),
    /// Called before every connect and reconnect. After `ticket-expired` the client asks it
    /// once more at once (once per welcome), as `duet.js` does.
    Provider(Arc<Fetch>),
}

impl Ticket {
    /// A provider from an async function, such as a call to your backend. Its error ends the
    /// attempt like a network failure would (the client retries with backoff).
    pub fn provider<F, Fut, E>(fetch: F) -> Ticket
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, E>> + Send + 'static,
        E: fmt::Display,
    {
        Ticket::Provider(Arc::new(move || {
            let fut = fetch();
            Box::pin(async move { fut.await.map_err(|e| e.to_string()) })
        }))
    }

    /// The ticket for the next connect.
    pub async fn get(&self) -> Result<Option<String>, String> {
        match self {
            Ticket::None => Ok(None),
            Ticket::Fixed(ticket) => Ok(Some(ticket.clone())),
            Ticket::Provider(fetch) => fetch().await.map(Some),
        }
    }

    pub fn is_provider(&self) -> bool {
        matches!(self, Ticket::Provider(_))
    }
}

impl fmt::Debug for Ticket {
    /// Never prints a ticket: it is a bearer credential.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ticket::None => write!(f, "Ticket::None"),
            Ticket::Fixed(_) => write!(f, "Ticket::Fixed(…)"),
            Ticket::Provider(_) => write!(f, "Ticket::Provider(…)"),
        }
    }
}

impl From<String> for Ticket {
    fn from(ticket: String) -> Ticket {
        Ticket::Fixed(ticket)
    }
}

impl From<&str> for Ticket {
    fn from(ticket: &str) -> Ticket {
        Ticket::Fixed(ticket.to_owned())
    }
}
