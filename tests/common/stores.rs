//! Small clients of the object stores the scale-out tests run against, for
//! the tests themselves (to create buckets and containers, and to look at
//! what berth stored): [`S3Client`] signs requests with AWS Signature
//! Version 4, [`AzureBlobClient`] with Azure Storage's Shared Key.
//!
//! Written from the services' published signing specifications, on purpose
//! independent of the storage client berth itself uses, so that a test that
//! reads an object back does not share a bug with the code under test. Each
//! request is signed in full (payload hash included); they are meant for
//! objects of test size, held in memory.

use aws_lc_rs::{digest, hmac};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use time::OffsetDateTime;

/// A response, read in full.
#[derive(Debug)]
pub struct StoreResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl StoreResponse {
    /// The body as text, for failure messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Panics with the status and body unless the status is `expected`.
    #[track_caller]
    pub fn expect_status(&self, expected: u16, what: &str) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            expected,
            "{what}: answered {} {}",
            self.status,
            self.text()
        );
        self
    }
}

/// Percent-encoding of RFC 3986 as both signing specifications want it:
/// everything but the unreserved characters, hex digits upper case; `/`
/// kept where `keep_slash` (object keys in paths).
fn uri_encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            b'/' if keep_slash => out.push('/'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
        .as_ref()
        .to_vec()
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, data))
}

// ---------------------------------------------------------------------------
// S3

/// Path-style S3 requests signed with AWS Signature Version 4.
#[derive(Clone)]
pub struct S3Client {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub endpoint: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    http: reqwest::Client,
}

impl S3Client {
    pub fn new(endpoint: &str, region: &str, access_key: &str, secret_key: &str) -> S3Client {
        S3Client {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            region: region.to_owned(),
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("an HTTP client"),
        }
    }

    /// The same client with other credentials (to see a wrong secret refused).
    pub fn with_secret(&self, secret_key: &str) -> S3Client {
        S3Client {
            secret_key: secret_key.to_owned(),
            ..self.clone()
        }
    }

    /// The same client talking to another endpoint (another gateway).
    pub fn with_endpoint(&self, endpoint: &str) -> S3Client {
        S3Client {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            ..self.clone()
        }
    }

    /// `CreateBucket`; an existing bucket of ours is no error.
    pub async fn create_bucket(&self, bucket: &str) -> Result<(), String> {
        let response = self
            .send(Method::PUT, bucket, "", &[], Bytes::new())
            .await?;
        match response.status.as_u16() {
            200 => Ok(()),
            409 if response.text().contains("BucketAlreadyOwnedByYou") => Ok(()),
            _ => Err(format!(
                "CreateBucket {bucket}: {} {}",
                response.status,
                response.text()
            )),
        }
    }

    /// `HeadBucket`: whether the bucket exists (and we may see it).
    pub async fn bucket_exists(&self, bucket: &str) -> Result<bool, String> {
        let response = self
            .send(Method::HEAD, bucket, "", &[], Bytes::new())
            .await?;
        Ok(response.status == StatusCode::OK)
    }

    pub async fn put_object(&self, bucket: &str, key: &str, body: Bytes) -> StoreResponse {
        self.answered("PutObject", Method::PUT, bucket, key, &[], body)
            .await
    }

    pub async fn get_object(&self, bucket: &str, key: &str) -> StoreResponse {
        self.answered("GetObject", Method::GET, bucket, key, &[], Bytes::new())
            .await
    }

    pub async fn delete_object(&self, bucket: &str, key: &str) -> StoreResponse {
        self.answered(
            "DeleteObject",
            Method::DELETE,
            bucket,
            key,
            &[],
            Bytes::new(),
        )
        .await
    }

    /// A listing of the bucket (`ListObjectsV2`, `ListMultipartUploads`, …
    /// as `query` says, named `what`), which must answer `200 OK`.
    pub async fn list(&self, what: &str, bucket: &str, query: &[(&str, &str)]) -> StoreResponse {
        let listing = self
            .answered(what, Method::GET, bucket, "", query, Bytes::new())
            .await;
        listing.expect_status(200, what);
        listing
    }

    /// [`send`](Self::send), which must get an answer (`what` names the
    /// operation for the panic).
    async fn answered(
        &self,
        what: &str,
        method: Method,
        bucket: &str,
        key: &str,
        query: &[(&str, &str)],
        body: Bytes,
    ) -> StoreResponse {
        self.send(method, bucket, key, query, body)
            .await
            .unwrap_or_else(|e| panic!("{what} {bucket}/{key}: {e}"))
    }

    /// Any request: `key` may be empty (a bucket request); `query` pairs are
    /// unencoded. Err only when no answer came (connection refused, …).
    pub async fn send(
        &self,
        method: Method,
        bucket: &str,
        key: &str,
        query: &[(&str, &str)],
        body: Bytes,
    ) -> Result<StoreResponse, String> {
        let path = if key.is_empty() {
            format!("/{}", uri_encode(bucket, false))
        } else {
            format!("/{}/{}", uri_encode(bucket, false), uri_encode(key, true))
        };
        let mut pairs: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
            .collect();
        pairs.sort();
        let query_string = pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let host = self
            .endpoint
            .split_once("://")
            .map_or(self.endpoint.as_str(), |(_, rest)| rest)
            .to_owned();
        let now = OffsetDateTime::now_utc();
        let date = format!(
            "{:04}{:02}{:02}",
            now.year(),
            u8::from(now.month()),
            now.day()
        );
        let amz_date = format!(
            "{date}T{:02}{:02}{:02}Z",
            now.hour(),
            now.minute(),
            now.second()
        );
        let payload_hash = sha256_hex(&body);

        // The canonical request, its string to sign and the derived key, as
        // the Signature Version 4 specification lays them out.
        let signed_headers = "host;x-amz-content-sha256;x-amz-date";
        let canonical_request = format!(
            "{method}\n{path}\n{query_string}\nhost:{host}\nx-amz-content-sha256:{payload_hash}\n\
             x-amz-date:{amz_date}\n\n{signed_headers}\n{payload_hash}"
        );
        let scope = format!("{date}/{}/s3/aws4_request", self.region);
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            sha256_hex(canonical_request.as_bytes())
        );
        let mut key = format!("AWS4{}", self.secret_key).into_bytes();
        for part in [date.as_str(), &self.region, "s3", "aws4_request"] {
            key = hmac_sha256(&key, part.as_bytes());
        }
        let signature = hex::encode(hmac_sha256(&key, string_to_sign.as_bytes()));
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, \
             Signature={signature}",
            self.access_key
        );

        let mut url = format!("{}{path}", self.endpoint);
        if !query_string.is_empty() {
            url.push('?');
            url.push_str(&query_string);
        }
        let response = self
            .http
            .request(method, url)
            .header("x-amz-date", amz_date)
            .header("x-amz-content-sha256", payload_hash)
            .header("authorization", authorization)
            .body(body)
            .send()
            .await
            .map_err(|e| format!("no answer from {}: {e}", self.endpoint))?;
        read_response(response).await
    }
}

async fn read_response(response: reqwest::Response) -> Result<StoreResponse, String> {
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("reading the body: {e}"))?;
    Ok(StoreResponse {
        status,
        headers,
        body,
    })
}

// ---------------------------------------------------------------------------
// Azure Blob Storage

/// The storage service version the requests ask for.
const AZURE_VERSION: &str = "2021-12-02";

/// Blob service requests signed with Shared Key, against an emulator-style
/// endpoint (`http://HOST:PORT/ACCOUNT`, the account in the path).
#[derive(Clone)]
pub struct AzureBlobClient {
    /// `http://127.0.0.1:PORT/ACCOUNT`, no trailing slash.
    pub endpoint: String,
    pub account: String,
    /// The account key, base64 as the portal (or Azurite) gives it.
    pub key: String,
    http: reqwest::Client,
}

impl AzureBlobClient {
    pub fn new(endpoint: &str, account: &str, key: &str) -> AzureBlobClient {
        AzureBlobClient {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            account: account.to_owned(),
            key: key.to_owned(),
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("an HTTP client"),
        }
    }

    /// The same client with another key (to see a wrong key refused).
    pub fn with_key(&self, key: &str) -> AzureBlobClient {
        AzureBlobClient {
            key: key.to_owned(),
            ..self.clone()
        }
    }

    /// Create Container; an existing one is no error.
    pub async fn create_container(&self, container: &str) -> Result<(), String> {
        let response = self
            .send(
                Method::PUT,
                container,
                "",
                &[("restype", "container")],
                &[],
                Bytes::new(),
            )
            .await?;
        match response.status.as_u16() {
            201 => Ok(()),
            409 if response.text().contains("ContainerAlreadyExists") => Ok(()),
            _ => Err(format!(
                "Create Container {container}: {} {}",
                response.status,
                response.text()
            )),
        }
    }

    /// Put Blob, as a block blob in one request.
    pub async fn put_blob(&self, container: &str, blob: &str, body: Bytes) -> StoreResponse {
        self.send(
            Method::PUT,
            container,
            blob,
            &[],
            &[("x-ms-blob-type", "BlockBlob")],
            body,
        )
        .await
        .unwrap_or_else(|e| panic!("Put Blob {container}/{blob}: {e}"))
    }

    pub async fn get_blob(&self, container: &str, blob: &str) -> StoreResponse {
        self.send(Method::GET, container, blob, &[], &[], Bytes::new())
            .await
            .unwrap_or_else(|e| panic!("Get Blob {container}/{blob}: {e}"))
    }

    /// Any request: `blob` may be empty (a container request); `query`
    /// pairs and `x_ms_headers` (lower-case `x-ms-*` names) unencoded.
    pub async fn send(
        &self,
        method: Method,
        container: &str,
        blob: &str,
        query: &[(&str, &str)],
        x_ms_headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<StoreResponse, String> {
        let mut path = format!("/{}", uri_encode(container, false));
        if !blob.is_empty() {
            path.push('/');
            path.push_str(&uri_encode(blob, true));
        }
        let mut headers: Vec<(String, String)> = x_ms_headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned()))
            .collect();
        headers.push(("x-ms-date".to_owned(), http_date(OffsetDateTime::now_utc())));
        headers.push(("x-ms-version".to_owned(), AZURE_VERSION.to_owned()));
        headers.sort();

        // Shared Key's string to sign: the standard headers (Content-Length
        // empty when zero, x-ms-date standing in for Date), the x-ms-*
        // headers, then the resource: "/" account, the URL's path (which on
        // an emulator starts with the account again) and the query
        // parameters, one "\nname:value" each, names sorted.
        let content_length = if body.is_empty() {
            String::new()
        } else {
            body.len().to_string()
        };
        let url_path = self
            .endpoint
            .split_once("://")
            .and_then(|(_, rest)| rest.split_once('/'))
            .map_or(String::new(), |(_, p)| format!("/{p}"));
        let mut resource = format!("/{}{url_path}{path}", self.account);
        let mut sorted_query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned()))
            .collect();
        sorted_query.sort();
        for (name, value) in &sorted_query {
            resource.push_str(&format!("\n{name}:{value}"));
        }
        let canonical_headers: String = headers
            .iter()
            .map(|(k, v)| format!("{k}:{}\n", v.trim()))
            .collect();
        let string_to_sign = format!(
            "{method}\n\n\n{content_length}\n\n\n\n\n\n\n\n\n{canonical_headers}{resource}"
        );
        let key = BASE64
            .decode(&self.key)
            .map_err(|e| format!("the account key is not base64: {e}"))?;
        let signature = BASE64.encode(hmac_sha256(&key, string_to_sign.as_bytes()));

        let mut url = format!("{}{path}", self.endpoint);
        if !query.is_empty() {
            let encoded: Vec<String> = query
                .iter()
                .map(|(k, v)| format!("{}={}", uri_encode(k, false), uri_encode(v, false)))
                .collect();
            url.push('?');
            url.push_str(&encoded.join("&"));
        }
        let mut header_map = HeaderMap::new();
        for (name, value) in &headers {
            header_map.insert(
                HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?,
                HeaderValue::from_str(value).map_err(|e| e.to_string())?,
            );
        }
        let response = self
            .http
            .request(method, url)
            .headers(header_map)
            .header(
                "authorization",
                format!("SharedKey {}:{signature}", self.account),
            )
            .body(body)
            .send()
            .await
            .map_err(|e| format!("no answer from {}: {e}", self.endpoint))?;
        read_response(response).await
    }
}

/// `Thu, 03 Dec 2026 03:23:13 GMT` (RFC 7231's IMF-fixdate).
fn http_date(at: OffsetDateTime) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[at.weekday().number_days_from_monday() as usize],
        at.day(),
        MONTHS[usize::from(u8::from(at.month())) - 1],
        at.year(),
        at.hour(),
        at.minute(),
        at.second()
    )
}
