//! The comparison peer: the usual tokio-tungstenite servers, one task per
//! connection on a current_thread runtime (one core, like wsd).
//!
//! Usage: `tungstenite-peer [ADDR:PORT] [--broadcast]` (default
//! 127.0.0.1:9002, echo). Prints `listening on ws://ADDR` once bound.
//! Broadcast sends every message to every client, the sender included,
//! through a tokio broadcast channel; a client that falls 4096 messages
//! behind is closed.

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let mut addr = "127.0.0.1:9002".to_string();
    let mut broadcast_mode = false;
    for arg in std::env::args().skip(1) {
        if arg == "--broadcast" {
            broadcast_mode = true;
        } else {
            addr = arg;
        }
    }
    let listener = TcpListener::bind(&addr).await?;
    let mode = if broadcast_mode { "broadcast" } else { "echo" };
    println!("listening on ws://{} ({mode})", listener.local_addr()?);
    let (tx, _) = broadcast::channel::<Message>(4096);
    loop {
        let (stream, _) = listener.accept().await?;
        if broadcast_mode {
            tokio::spawn(serve_broadcast(stream, tx.clone()));
        } else {
            tokio::spawn(serve_echo(stream));
        }
    }
}

async fn accept(stream: TcpStream) -> Option<WebSocketStream<TcpStream>> {
    let _ = stream.set_nodelay(true);
    let config = WebSocketConfig::default().max_message_size(Some(16 << 20));
    tokio_tungstenite::accept_async_with_config(stream, Some(config))
        .await
        .ok()
}

async fn serve_echo(stream: TcpStream) {
    let Some(ws) = accept(stream).await else {
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

async fn serve_broadcast(stream: TcpStream, hub: broadcast::Sender<Message>) {
    let Some(ws) = accept(stream).await else {
        return;
    };
    let (mut tx, mut rx) = ws.split();
    let mut inbox = hub.subscribe();
    let writer = async move {
        loop {
            match inbox.recv().await {
                Ok(msg) => {
                    // Feed everything already waiting, then flush once.
                    let mut next = Some(msg);
                    while let Some(m) = next.take() {
                        if tx.feed(m).await.is_err() {
                            return;
                        }
                        next = inbox.try_recv().ok();
                    }
                    if tx.flush().await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => {
                    let _ = tx.close().await;
                    return;
                }
            }
        }
    };
    let reader = async move {
        while let Some(Ok(msg)) = rx.next().await {
            match msg {
                Message::Text(_) | Message::Binary(_) => {
                    let _ = hub.send(msg);
                }
                Message::Close(_) => return,
                _ => {}
            }
        }
    };
    tokio::select! {
        _ = writer => {}
        _ = reader => {}
    }
}
