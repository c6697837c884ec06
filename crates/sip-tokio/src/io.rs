//! The tasks that touch sockets: UDP receivers, TCP accept loops, and per connection a
//! reader and a writer. They only move bytes; every decision is the engine task's.

use crate::engine::Input;
use bytes::{Bytes, BytesMut};
use sip_core::{ConnectionId, Transport};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

/// The largest UDP datagram (65535 minus the IP and UDP headers would do; the whole
/// 16-bit length costs nothing more).
const DATAGRAM_BUFFER: usize = 65535;
/// How much one stream read may take at once.
const READ_CHUNK: usize = 16 * 1024;
/// A peer that does not take one message within this time is treated as gone: a writer
/// blocked for ever would hold the connection and its queue.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// After a failed accept (EMFILE, ENFILE), wait before the next try rather than spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Receives datagrams on one UDP socket and hands them to the engine task.
pub(crate) async fn udp_receiver(socket: Arc<UdpSocket>, local: SocketAddr, engine: mpsc::Sender<Input>) {
    let mut buf = vec![0u8; DATAGRAM_BUFFER];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, remote)) => {
                let data = Bytes::copy_from_slice(&buf[..n]);
                if engine.send(Input::Datagram { local, remote, data }).await.is_err() {
                    return; // the engine task has ended
                }
            }
            Err(e) => {
                // ICMP errors surface here on some systems (ECONNREFUSED for an earlier
                // send); they name no peer, so there is nothing to report upwards.
                tracing::debug!(%local, error = %e, "udp receive error");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
}

/// Accepts connections on one TCP listener (plain or TLS: the handshake happens in the
/// connection's own task, so a slow handshake never holds up the next accept).
pub(crate) async fn accept_loop(listener: TcpListener, transport: Transport, local: SocketAddr, engine: mpsc::Sender<Input>) {
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => {
                // SIP messages are small and latency matters more than packet count.
                let _ = stream.set_nodelay(true);
                if engine.send(Input::Accepted { transport, local, remote, stream }).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(%local, %transport, error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// How a connection task starts: an accepted socket (maybe to be wrapped in TLS), or a
/// peer to connect to.
pub(crate) enum Start {
    Accepted(TcpStream),
    Connect(SocketAddr),
}

/// Everything one connection task needs.
pub(crate) struct ConnTask {
    pub id: ConnectionId,
    pub start: Start,
    pub tls_server: Option<tokio_rustls::TlsAcceptor>,
    pub tls_client: Option<tokio_rustls::TlsConnector>,
    pub connect_timeout: Duration,
    pub outgoing: mpsc::Receiver<Bytes>,
    pub engine: mpsc::Sender<Input>,
}

impl ConnTask {
    /// Opens (connect and/or handshake) and then serves the connection until either side
    /// ends it. A failure to open is reported as [`Input::ConnectFailed`], anything later
    /// as [`Input::Closed`].
    pub async fn run(self) {
        let ConnTask { id, start, tls_server, tls_client, connect_timeout, outgoing, engine } = self;
        let opened = tokio::time::timeout(connect_timeout, async {
            let tcp = match start {
                Start::Accepted(s) => s,
                Start::Connect(remote) => {
                    let s = TcpStream::connect(remote).await?;
                    let _ = s.set_nodelay(true);
                    s
                }
            };
            Ok::<_, std::io::Error>(tcp)
        })
        .await;
        let tcp = match opened {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => return fail(&engine, id, e.to_string()).await,
            Err(_) => return fail(&engine, id, "connect timed out".into()).await,
        };
        if let Some(acceptor) = tls_server {
            match tokio::time::timeout(connect_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => serve(id, tls, outgoing, engine).await,
                Ok(Err(e)) => fail(&engine, id, format!("TLS handshake: {e}")).await,
                Err(_) => fail(&engine, id, "TLS handshake timed out".into()).await,
            }
        } else if let Some(connector) = tls_client {
            let remote = match tcp.peer_addr() {
                Ok(a) => a,
                Err(e) => return fail(&engine, id, e.to_string()).await,
            };
            // Verified against the IP: the engine's Flow carries no host name (see crate docs).
            let name = rustls::pki_types::ServerName::IpAddress(remote.ip().into());
            match tokio::time::timeout(connect_timeout, connector.connect(name, tcp)).await {
                Ok(Ok(tls)) => serve(id, tls, outgoing, engine).await,
                Ok(Err(e)) => fail(&engine, id, format!("TLS handshake: {e}")).await,
                Err(_) => fail(&engine, id, "TLS handshake timed out".into()).await,
            }
        } else {
            serve(id, tcp, outgoing, engine).await;
        }
    }
}

async fn fail(engine: &mpsc::Sender<Input>, id: ConnectionId, reason: String) {
    let _ = engine.send(Input::ConnectFailed { id, reason }).await;
}

/// Reads in this task, writes in a second one, so a peer slow to read never stops us
/// from hearing it (and the engine never waits on either).
async fn serve<S>(id: ConnectionId, stream: S, outgoing: mpsc::Receiver<Bytes>, engine: mpsc::Sender<Input>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, writer) = tokio::io::split(stream);
    let _ = engine.send(Input::Opened { id }).await;
    tokio::spawn(write_loop(id, writer, outgoing, engine.clone()));
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let reason = loop {
        buf.reserve(READ_CHUNK);
        match reader.read_buf(&mut buf).await {
            Ok(0) => break "closed by peer".to_owned(),
            Ok(_) => {
                if engine.send(Input::Stream { id, data: buf.split().freeze() }).await.is_err() {
                    return;
                }
            }
            Err(e) => break e.to_string(),
        }
    };
    let _ = engine.send(Input::Closed { id, reason }).await;
}

/// Writes queued messages in order. When the engine drops the queue's sender (Close,
/// idle, shutdown), whatever is queued is still written, then the write side is shut
/// (a FIN, after a TLS close_notify).
async fn write_loop<W>(id: ConnectionId, mut writer: W, mut outgoing: mpsc::Receiver<Bytes>, engine: mpsc::Sender<Input>)
where
    W: AsyncWrite + Unpin,
{
    while let Some(payload) = outgoing.recv().await {
        let written = tokio::time::timeout(WRITE_TIMEOUT, async {
            writer.write_all(&payload).await?;
            writer.flush().await
        })
        .await;
        let reason = match written {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e.to_string(),
            Err(_) => "write timed out".to_owned(),
        };
        let _ = engine.send(Input::Closed { id, reason }).await;
        return;
    }
    let _ = tokio::time::timeout(WRITE_TIMEOUT, writer.shutdown()).await;
}
