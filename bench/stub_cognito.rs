//! A fast Cognito stand-in for bench/stack.sh: a tiny hyper server that
//! answers awsJson1.1 the way Cognito does for the operations the bench
//! calls, with a constant body and no checks.
//!
//!   stub_cognito --addr 127.0.0.1:PORT

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;

const GET: &str =
    r#"{"SoftwareTokenMfaConfiguration":{"Enabled":true},"MfaConfiguration":"OPTIONAL"}"#;

async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let body =
        if target.ends_with("GetUserPoolMfaConfig") || target.ends_with("SetUserPoolMfaConfig") {
            GET
        } else {
            "{}"
        };
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    r.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    r.headers_mut().insert(
        "x-amzn-requestid",
        hyper::header::HeaderValue::from_static("stub"),
    );
    Ok(r)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr: std::net::SocketAddr = match (args.next().as_deref(), args.next()) {
        (Some("--addr"), Some(a)) => a.parse()?,
        _ => return Err("usage: stub_cognito --addr HOST:PORT".into()),
    };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service_fn(answer))
                .await;
        });
    }
}
