//! The comparison peer: the usual tokio-tungstenite echo server, one task per
//! connection on a current_thread runtime (one core, like wsd).
//!
//! Usage: `tungstenite-echo [ADDR:PORT]` (default 127.0.0.1:9002). Prints
//! `listening on ws://ADDR` once bound.

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9002".into());
    let listener = TcpListener::bind(&addr).await?;
    println!("listening on ws://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(serve(stream));
    }
}

async fn serve(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let config = WebSocketConfig::default().max_message_size(Some(16 << 20));
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    let (mut tx, mut rx) = ws.split();
    // Feed every message that is already readable, then flush once: the
    // best batching this stack offers.
    while let Some(Ok(first)) = rx.next().await {
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Message::Text(_) | Message::Binary(_) => {
                    if tx.feed(msg).await.is_err() {
                        return;
                    }
                }
                // tungstenite queued the Close reply; flush sends it.
                Message::Close(_) => {
                    let _ = tx.flush().await;
                    return;
                }
                _ => {}
            }
            if let Some(Some(Ok(more))) = rx.next().now_or_never() {
                next = Some(more);
            }
        }
        if tx.flush().await.is_err() {
            return;
        }
    }
}
