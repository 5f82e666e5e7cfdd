// Two peers meet in a room, one sends the other a message, both leave.
use duet_client::{Client, Config, Event, ServerFrame};

#[tokio::main]
pub async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = std::env::var("DUET_URL").unwrap_or_else(|_| "http://127.0.0.1:8787".into());
    let room = format!("quickstart-{}", std::process::id());

    // The first peer opens the room; the second joins it.
    let mut alice = Client::connect(Config::new(&server, &room)?);
    wait_for(&mut alice, |e| {
        matches!(e, Event::Frame(ServerFrame::Created(_)))
    })
    .await?;
    let mut bob = Client::connect(Config::new(&server, &room)?);

    // Both are told `ready`; the initiator (the first in) makes the offer.
    wait_for(&mut bob, |e| {
        matches!(e, Event::Frame(ServerFrame::Ready { .. }))
    })
    .await?;
    wait_for(&mut alice, |e| {
        matches!(e, Event::Frame(ServerFrame::Ready { .. }))
    })
    .await?;
    assert_eq!(alice.status().slot.is_initiator(), Some(true));
    alice.send(&serde_json::json!({ "hello": "bob" })).await?;

    if let Event::Message { from, data } =
        wait_for(&mut bob, |e| matches!(e, Event::Message { .. })).await?
    {
        println!("bob got {} from {from}", data.get());
    }

    // Leaving releases the slot at once: the other peer hears `peer-left`.
    bob.leave();
    wait_for(&mut bob, |e| matches!(e, Event::Closed(_))).await?;
    wait_for(&mut alice, |e| {
        matches!(e, Event::Frame(ServerFrame::PeerLeft { .. }))
    })
    .await?;
    alice.leave();
    wait_for(&mut alice, |e| matches!(e, Event::Closed(_))).await?;
    Ok(())
}

/// The first event that `want` accepts, within 10 s; other events (pongs, …) are skipped.
async fn wait_for(client: &mut Client, want: impl Fn(&Event) -> bool) -> Result<Event, String> {
    let within = std::time::Duration::from_secs(10);
    loop {
        match tokio::time::timeout(within, client.next_event()).await {
            Err(_) => return Err("timed out".into()),
            Ok(None) => return Err("the client stopped".into()),
            Ok(Some(event)) if want(&event) => return Ok(event),
            Ok(Some(Event::Closed(close))) => return Err(format!("closed: {close:?}")),
            Ok(Some(_)) => {}
        }
    }
}
