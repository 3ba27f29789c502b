//! A bare HTTP/1.1 GET for large downloads: one request on a fresh
//! connection, the body read straight from the socket into one reused 4 MiB
//! buffer.
//!
//! The pull scenarios share two cores with the registry, so the client must
//! cost as little per byte as it can: an HTTP library hands the body over in
//! frames of a few tens of KiB, each a read, an allocation and a wake-up,
//! and on this machine that made the client, not the registry, the limit of
//! a pull. Here the per-byte cost is the kernel's copy alone.

use anyhow::{Context, Result, bail, ensure};
use aws_lc_rs::digest;
use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::data::sha256_string;

const BUFFER: usize = 4 << 20;
const MAX_HEADERS: usize = 64;

pub struct Download {
    pub status: u16,
    pub headers: HeaderMap,
    /// Body bytes received.
    pub bytes: u64,
    /// sha256 of the body, when asked for.
    pub digest: Option<String>,
}

/// `GET url` with `headers` (which must carry any credentials). Only plain
/// `http://` URLs; the body must be delimited by `Content-Length` or by the
/// end of the connection (chunked bodies are refused).
pub async fn get(url: &Url, headers: &HeaderMap, hash: bool) -> Result<Download> {
    ensure!(
        url.scheme() == "http",
        "the raw download client speaks plain HTTP only, not {url}"
    );
    let host = url.host_str().context("URL without a host")?;
    let port = url.port_or_known_default().unwrap_or(80);
    let mut stream = TcpStream::connect((host, port))
        .await
        .with_context(|| format!("connecting to {host}:{port}"))?;
    stream.set_nodelay(true)?;
    stream.write_all(&request_head(url, headers)).await?;

    let mut buffer = vec![0u8; BUFFER];
    let mut filled = 0;
    let (status, response_headers, head_len) = loop {
        let read = stream.read(&mut buffer[filled..]).await?;
        ensure!(read > 0, "connection closed before the response head");
        filled += read;
        if let Some(head) = parse_head(&buffer[..filled])? {
            break head;
        }
        ensure!(filled < BUFFER, "response head larger than {BUFFER} bytes");
    };
    if response_headers.contains_key(reqwest::header::TRANSFER_ENCODING) {
        bail!("the raw download client does not read Transfer-Encoding bodies");
    }
    let expected: Option<u64> = match response_headers.get(reqwest::header::CONTENT_LENGTH) {
        Some(v) => Some(v.to_str()?.parse().context("Content-Length")?),
        None => None,
    };

    let mut hasher = hash.then(|| digest::Context::new(&digest::SHA256));
    let mut bytes = 0u64;
    let mut chunk = head_len..filled;
    loop {
        bytes += chunk.len() as u64;
        if let Some(h) = hasher.as_mut() {
            h.update(&buffer[chunk]);
        }
        if expected.is_some_and(|len| bytes >= len) {
            break;
        }
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            if let Some(len) = expected {
                bail!("connection closed after {bytes} of {len} body bytes");
            }
            break;
        }
        chunk = 0..read;
    }
    if let Some(len) = expected {
        ensure!(
            bytes == len,
            "received {bytes} body bytes, Content-Length {len}"
        );
    }
    Ok(Download {
        status,
        headers: response_headers,
        bytes,
        digest: hasher.map(|h| sha256_string(h.finish())),
    })
}

fn request_head(url: &Url, headers: &HeaderMap) -> Vec<u8> {
    let mut target = url.path().to_owned();
    if let Some(query) = url.query() {
        target.push('?');
        target.push_str(query);
    }
    let mut head = format!(
        "GET {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        url.authority()
    )
    .into_bytes();
    for (name, value) in headers {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// Status, headers and head length once `data` holds the whole head.
fn parse_head(data: &[u8]) -> Result<Option<(u16, HeaderMap, usize)>> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut slots);
    let head_len = match response.parse(data).context("malformed response head")? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => return Ok(None),
    };
    let mut headers = HeaderMap::new();
    for header in response.headers.iter() {
        headers.append(
            HeaderName::from_bytes(header.name.as_bytes())?,
            HeaderValue::from_bytes(header.value)?,
        );
    }
    let status = response.code.context("response without a status")?;
    Ok(Some((status, headers, head_len)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// Serves one canned response and returns the request it read.
    async fn serve_once(response: Vec<u8>) -> (Url, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!(
            "http://{}/v2/a/blobs/x?q=1",
            listener.local_addr().unwrap()
        ))
        .unwrap();
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = vec![0u8; 4096];
            let mut read = 0;
            while !request[..read].ends_with(b"\r\n\r\n") {
                read += socket.read(&mut request[read..]).await.unwrap();
            }
            socket.write_all(&response).await.unwrap();
            String::from_utf8_lossy(&request[..read]).into_owned()
        });
        (url, task)
    }

    #[tokio::test]
    async fn reads_a_body_by_its_length_and_hashes_it() {
        let body = vec![7u8; 100_000];
        let mut response =
            b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nDocker-Content-Digest: d\r\n\r\n"
                .to_vec();
        response.extend_from_slice(&body);
        let (url, server) = serve_once(response).await;
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("Bearer t"));
        let got = get(&url, &headers, true).await.unwrap();
        assert_eq!((got.status, got.bytes), (200, 100_000));
        assert_eq!(got.headers["docker-content-digest"], "d");
        assert_eq!(
            got.digest.unwrap(),
            sha256_string(digest::digest(&digest::SHA256, &body))
        );
        let request = server.await.unwrap();
        assert!(request.starts_with("GET /v2/a/blobs/x?q=1 HTTP/1.1\r\n"));
        assert!(request.contains("\r\nauthorization: Bearer t\r\n"));
    }

    #[tokio::test]
    async fn a_short_body_is_an_error() {
        let (url, _server) =
            serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec()).await;
        let err = get(&url, &HeaderMap::new(), false).await.err().unwrap();
        assert!(err.to_string().contains("3 of 10"), "{err}");
    }

    #[tokio::test]
    async fn chunked_bodies_are_refused() {
        let (url, _server) = serve_once(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n".to_vec(),
        )
        .await;
        assert!(get(&url, &HeaderMap::new(), false).await.is_err());
    }
}
