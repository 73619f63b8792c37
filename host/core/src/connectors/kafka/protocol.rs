//! The transaction requests a restore needs and librdkafka has no call for, spoken over a
//! plain connection: find a transactional id's coordinator, describe its transaction, end a
//! transaction of a known producer id and epoch (what Flink does by reflection into the Java
//! producer), list the open transactions, and fence an id (which aborts its open
//! transaction).
//!
//! Blocking, one request at a time, retried while the coordinator moves or loads, within
//! the client's timeout. Connections are secured as the client settings say
//! ([`Security`]): TLS, then SASL (`PLAIN`, or SCRAM through [`ScramClient`]).

use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, DescribeTransactionsRequest, EndTxnRequest, FindCoordinatorRequest,
    InitProducerIdRequest, ListTransactionsRequest, MetadataRequest, ProducerId, RequestHeader,
    ResponseHeader, SaslAuthenticateRequest, SaslHandshakeRequest, TransactionalId,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use rustls::pki_types::ServerName;

use super::scram::{ScramClient, ScramError};
use super::security::{Mechanism, Sasl, Security};

/// Request versions: flexible ones every Kafka since 3.0 serves, with the transaction
/// protocol librdkafka's producers use (EndTxn before KIP-890's version 5).
const FIND_COORDINATOR: i16 = 3;
const DESCRIBE_TRANSACTIONS: i16 = 0;
const END_TXN: i16 = 3;
const INIT_PRODUCER_ID: i16 = 4;
const LIST_TRANSACTIONS: i16 = 0;
const METADATA: i16 = 12;
const SASL_HANDSHAKE: i16 = 1;
const SASL_AUTHENTICATE: i16 = 2;
/// FindCoordinator's key type for transactional ids.
const TRANSACTION: i8 = 1;
/// The longest response accepted (a describe or an end is tiny).
const MAX_RESPONSE: usize = 16 << 20;
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// A transactional id's transaction, as its coordinator describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Described {
    /// Kafka's state name: `Empty`, `Ongoing`, `PrepareCommit`, `PrepareAbort`,
    /// `CompleteCommit`, `CompleteAbort`, `Dead`, `PrepareEpochFence`.
    pub state: String,
    pub producer_id: i64,
    pub epoch: i16,
}

/// A request failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum ProtocolError {
    #[error("cannot reach {addr}: {cause}")]
    Io { addr: String, cause: std::io::Error },
    /// The TLS handshake failed for a reason a retry does not mend (a certificate).
    #[error("TLS with {addr}: {cause}")]
    Tls { addr: String, cause: std::io::Error },
    #[error("SASL {mechanism} authentication with {addr} failed: {reason}")]
    Authentication {
        addr: String,
        mechanism: &'static str,
        reason: String,
    },
    #[error("malformed response from {addr}: {reason}")]
    Malformed { addr: String, reason: String },
    /// The broker answered with an error code.
    #[error("{0:?} ({0})")]
    Broker(ResponseError),
    #[error("gave up after {0:?}: {1}")]
    Timeout(Duration, Box<ProtocolError>),
}

impl ProtocolError {
    /// The broker's error code, if it answered with one.
    pub(super) fn broker(&self) -> Option<&ResponseError> {
        match self {
            ProtocolError::Broker(e) => Some(e),
            ProtocolError::Timeout(_, e) => e.broker(),
            _ => None,
        }
    }

    /// Whether the same request may succeed later (the coordinator moves, loads, or is
    /// busy finishing the transaction).
    fn is_retriable(&self) -> bool {
        match self {
            ProtocolError::Io { .. } => true,
            ProtocolError::Broker(e) => {
                e.is_retriable() || matches!(e, ResponseError::ConcurrentTransactions)
            }
            ProtocolError::Malformed { .. }
            | ProtocolError::Tls { .. }
            | ProtocolError::Authentication { .. }
            | ProtocolError::Timeout(..) => false,
        }
    }
}

/// Talks to the transaction coordinators of one cluster.
pub(super) struct Coordinators {
    bootstrap: Vec<String>,
    timeout: Duration,
    security: Security,
}

impl Coordinators {
    pub(super) fn new(bootstrap: Vec<String>, timeout: Duration, security: Security) -> Self {
        Coordinators {
            bootstrap,
            timeout,
            security,
        }
    }

    fn connect(&self, addr: &str) -> Result<Connection, ProtocolError> {
        Connection::open(addr, self.timeout, &self.security)
    }

    /// The transaction of `id`; `None` when the cluster does not know the id.
    pub(super) fn describe(&self, id: &str) -> Result<Option<Described>, ProtocolError> {
        let request = DescribeTransactionsRequest::default()
            .with_transactional_ids(vec![TransactionalId(StrBytes::from_string(id.into()))]);
        let result = self.with_coordinator(id, |connection| {
            let response = connection.call(DESCRIBE_TRANSACTIONS, &request)?;
            let state = response
                .transaction_states
                .into_iter()
                .next()
                .ok_or_else(|| connection.malformed("no transaction state"))?;
            check(state.error_code)?;
            Ok(Described {
                state: state.transaction_state.to_string(),
                producer_id: state.producer_id.0,
                epoch: state.producer_epoch,
            })
        });
        match result {
            Ok(described) => Ok(Some(described)),
            Err(ProtocolError::Broker(ResponseError::TransactionalIdNotFound)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Commits (or aborts) the transaction `id` holds under producer `producer_id` and
    /// `epoch`. Committing one already committed succeeds (the coordinator treats it as a
    /// retry).
    pub(super) fn end(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<(), ProtocolError> {
        let request = EndTxnRequest::default()
            .with_transactional_id(TransactionalId(StrBytes::from_string(id.into())))
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch)
            .with_committed(commit);
        self.with_coordinator(id, |connection| {
            check(connection.call(END_TXN, &request)?.error_code)
        })
    }

    /// The ids of the transactions open now (`Ongoing`), asked of every broker (each
    /// coordinates some of them).
    pub(super) fn open_transactions(&self) -> Result<Vec<String>, ProtocolError> {
        let request = ListTransactionsRequest::default()
            .with_state_filters(vec![StrBytes::from_static_str("Ongoing")]);
        let mut open = Vec::new();
        for broker in self.retrying(|| self.brokers())? {
            let states = self.retrying(|| {
                let mut connection = self.connect(&broker)?;
                let response = connection.call(LIST_TRANSACTIONS, &request)?;
                check(response.error_code)?;
                Ok(response.transaction_states)
            })?;
            open.extend(
                states
                    .into_iter()
                    .map(|state| state.transactional_id.0.to_string()),
            );
        }
        Ok(open)
    }

    /// `host:port` of every broker, from the first bootstrap server that answers.
    fn brokers(&self) -> Result<Vec<String>, ProtocolError> {
        let request = MetadataRequest::default().with_topics(Some(Vec::new()));
        self.ask_bootstrap(|connection| {
            let response = connection.call(METADATA, &request)?;
            Ok(response
                .brokers
                .iter()
                .map(|broker| format!("{}:{}", broker.host, broker.port))
                .collect())
        })
    }

    /// Fences `id`: a new epoch for it, which aborts its open transaction and makes any
    /// producer still using the old one fail.
    pub(super) fn fence(&self, id: &str, transaction_timeout_ms: i32) -> Result<(), ProtocolError> {
        let request = InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(StrBytes::from_string(id.into()))))
            .with_transaction_timeout_ms(transaction_timeout_ms)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        self.with_coordinator(id, |connection| {
            check(connection.call(INIT_PRODUCER_ID, &request)?.error_code)
        })
    }

    /// Runs `call` against the coordinator of `id`, finding it again and retrying while the
    /// error is retriable, until the timeout.
    fn with_coordinator<T>(
        &self,
        id: &str,
        mut call: impl FnMut(&mut Connection) -> Result<T, ProtocolError>,
    ) -> Result<T, ProtocolError> {
        self.retrying(|| {
            let addr = self.coordinator(id)?;
            call(&mut self.connect(&addr)?)
        })
        .inspect_err(|e| tracing::debug!("transaction coordinator of {id}: {e}"))
    }

    /// Runs `call` again while its error is retriable, until the timeout.
    fn retrying<T>(
        &self,
        mut call: impl FnMut() -> Result<T, ProtocolError>,
    ) -> Result<T, ProtocolError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            match call() {
                Err(e) if e.is_retriable() && Instant::now() < deadline => {
                    std::thread::sleep(RETRY_PAUSE);
                }
                Err(e) if e.is_retriable() => {
                    return Err(ProtocolError::Timeout(self.timeout, Box::new(e)));
                }
                other => return other,
            }
        }
    }

    /// `host:port` of the coordinator of transactional id `id`, asked of the first
    /// bootstrap server that answers.
    fn coordinator(&self, id: &str) -> Result<String, ProtocolError> {
        let request = FindCoordinatorRequest::default()
            .with_key(StrBytes::from_string(id.into()))
            .with_key_type(TRANSACTION);
        self.ask_bootstrap(|connection| {
            let response = connection.call(FIND_COORDINATOR, &request)?;
            check(response.error_code)?;
            Ok(format!("{}:{}", response.host, response.port))
        })
    }

    /// Runs `call` on the first bootstrap server that answers it.
    fn ask_bootstrap<T>(
        &self,
        call: impl Fn(&mut Connection) -> Result<T, ProtocolError>,
    ) -> Result<T, ProtocolError> {
        let mut last = None;
        for server in &self.bootstrap {
            match self.connect(server).and_then(|mut c| call(&mut c)) {
                Ok(answer) => return Ok(answer),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ProtocolError::Io {
            addr: "bootstrap servers".into(),
            cause: std::io::Error::other("none given"),
        }))
    }
}

/// An error code as a result.
fn check(code: i16) -> Result<(), ProtocolError> {
    match ResponseError::try_from_code(code) {
        None => Ok(()),
        Some(e) => Err(ProtocolError::Broker(e)),
    }
}

/// One connection to a broker.
struct Connection {
    addr: String,
    stream: Stream,
    correlation: i32,
}

/// A connection's bytes: plain TCP, or TLS over it.
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.read(buf),
            Stream::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.write(buf),
            Stream::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(tcp) => tcp.flush(),
            Stream::Tls(tls) => tls.flush(),
        }
    }
}

impl Connection {
    /// Connects to `addr` (`host:port`), with TLS and SASL when `security` asks for them.
    fn open(addr: &str, timeout: Duration, security: &Security) -> Result<Self, ProtocolError> {
        let io = |cause| ProtocolError::Io {
            addr: addr.to_owned(),
            cause,
        };
        let socket = addr
            .to_socket_addrs()
            .map_err(io)?
            .next()
            .ok_or_else(|| io(std::io::Error::other("no address")))?;
        let mut tcp = TcpStream::connect_timeout(&socket, timeout).map_err(io)?;
        tcp.set_read_timeout(Some(timeout)).map_err(io)?;
        tcp.set_write_timeout(Some(timeout)).map_err(io)?;
        tcp.set_nodelay(true).map_err(io)?;
        let stream = match &security.tls {
            None => Stream::Plain(tcp),
            Some(tls) => {
                let tls_error = |cause| ProtocolError::Tls {
                    addr: addr.to_owned(),
                    cause,
                };
                let mut client = rustls::ClientConnection::new(Arc::clone(tls), server_name(addr)?)
                    .map_err(|e| tls_error(std::io::Error::other(e)))?;
                // The handshake now, so that a certificate refused is told apart from a
                // connection lost (rustls reports the former as invalid data).
                while client.is_handshaking() {
                    client.complete_io(&mut tcp).map_err(|e| {
                        if e.kind() == std::io::ErrorKind::InvalidData {
                            tls_error(e)
                        } else {
                            io(e)
                        }
                    })?;
                }
                Stream::Tls(Box::new(rustls::StreamOwned::new(client, tcp)))
            }
        };
        let mut connection = Connection {
            addr: addr.to_owned(),
            stream,
            correlation: 0,
        };
        if let Some(sasl) = &security.sasl {
            connection.authenticate(sasl)?;
        }
        Ok(connection)
    }

    /// SASL: the handshake naming the mechanism, then its exchange.
    fn authenticate(&mut self, sasl: &Sasl) -> Result<(), ProtocolError> {
        let mechanism = sasl.mechanism.name();
        let handshake = self.call(
            SASL_HANDSHAKE,
            &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism)),
        )?;
        if let Some(e) = ResponseError::try_from_code(handshake.error_code) {
            let offered: Vec<&str> = handshake.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(self.refused(
                mechanism,
                format!("{e} (the broker offers {})", offered.join(", ")),
            ));
        }
        match sasl.mechanism {
            Mechanism::Plain => {
                let message = format!("\0{}\0{}", sasl.username, sasl.password);
                self.sasl_round(mechanism, message)?;
            }
            Mechanism::Scram(hash) => {
                let scram = |this: &Self, e: ScramError| this.refused(mechanism, e.to_string());
                let client = ScramClient::new(
                    hash,
                    &sasl.username,
                    &sasl.password,
                    ScramClient::random_nonce(),
                );
                let server_first = self.sasl_round(mechanism, client.first())?;
                let last = client.last(&server_first).map_err(|e| scram(self, e))?;
                let server_final = self.sasl_round(mechanism, last.message.clone())?;
                last.verify(&server_final).map_err(|e| scram(self, e))?;
            }
        }
        Ok(())
    }

    /// Sends one SASL message and returns the server's answer.
    fn sasl_round(
        &mut self,
        mechanism: &'static str,
        message: String,
    ) -> Result<String, ProtocolError> {
        let response = self.call(
            SASL_AUTHENTICATE,
            &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(message)),
        )?;
        if let Some(e) = ResponseError::try_from_code(response.error_code) {
            let reason = match response.error_message {
                Some(message) => format!("{e}: {message}"),
                None => e.to_string(),
            };
            return Err(self.refused(mechanism, reason));
        }
        String::from_utf8(response.auth_bytes.to_vec())
            .map_err(|_| self.malformed("a SASL answer that is not UTF-8"))
    }

    fn refused(&self, mechanism: &'static str, reason: String) -> ProtocolError {
        ProtocolError::Authentication {
            addr: self.addr.clone(),
            mechanism,
            reason,
        }
    }

    fn malformed(&self, reason: impl std::fmt::Display) -> ProtocolError {
        ProtocolError::Malformed {
            addr: self.addr.clone(),
            reason: reason.to_string(),
        }
    }

    /// Sends `request` at `version` and reads its response.
    fn call<R: Request>(
        &mut self,
        version: i16,
        request: &R,
    ) -> Result<R::Response, ProtocolError> {
        self.correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("cairn")));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, R::header_version(version))
            .and_then(|()| request.encode(&mut body, version))
            .map_err(|e| self.malformed(format!("cannot encode {:?}: {e}", api(R::KEY))))?;
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_i32(body.len() as i32);
        frame.extend_from_slice(&body);
        let io = |addr: &str, cause| ProtocolError::Io {
            addr: addr.to_owned(),
            cause,
        };
        self.stream
            .write_all(&frame)
            .map_err(|e| io(&self.addr, e))?;
        let mut size = [0; 4];
        self.stream
            .read_exact(&mut size)
            .map_err(|e| io(&self.addr, e))?;
        let size = i32::from_be_bytes(size);
        let size = usize::try_from(size)
            .ok()
            .filter(|s| *s <= MAX_RESPONSE)
            .ok_or_else(|| self.malformed(format!("response size {size}")))?;
        let mut response = vec![0; size];
        self.stream
            .read_exact(&mut response)
            .map_err(|e| io(&self.addr, e))?;
        let mut response = Bytes::from(response);
        let header = ResponseHeader::decode(&mut response, R::Response::header_version(version))
            .map_err(|e| self.malformed(e))?;
        if header.correlation_id != self.correlation {
            return Err(self.malformed(format!(
                "correlation id {} for request {}",
                header.correlation_id, self.correlation
            )));
        }
        let decoded = R::Response::decode(&mut response, version).map_err(|e| self.malformed(e))?;
        if response.has_remaining() {
            tracing::debug!(
                "{} bytes after a {:?} response",
                response.remaining(),
                api(R::KEY)
            );
        }
        Ok(decoded)
    }
}

/// The name a TLS connection to `addr` verifies: its host, a name or an IP address.
fn server_name(addr: &str) -> Result<ServerName<'static>, ProtocolError> {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(ip) => Ok(ServerName::IpAddress(ip.into())),
        Err(_) => ServerName::try_from(host.to_owned()).map_err(|e| ProtocolError::Tls {
            addr: addr.to_owned(),
            cause: std::io::Error::other(e),
        }),
    }
}

fn api(key: i16) -> Option<ApiKey> {
    ApiKey::try_from(key).ok()
}
