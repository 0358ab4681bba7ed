//! Serving `lambda_http` handlers on a plain local HTTP server: used by `make run` (`wx
//! serve`) and by end-to-end tests, so that both exercise the very handlers Lambda runs. A handler
//! that panics gets a 500 and the server keeps serving, as a Lambda function built with
//! `panic = "unwind"` reports the panic as an invocation error and keeps its container.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lambda_http::{Body, Request, RequestExt, Response};
use tokio::net::TcpListener;

/// Bodies larger than this are cut off before they reach a handler, as API Gateway would.
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// The TCP peer of a request, as a request extension: handlers that must answer only this
/// machine (the local Lambda Invoke emulation) check it. Absent when a test builds the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub std::net::SocketAddr);

/// Serve `handler` on `listener` until the task is dropped or aborted.
pub async fn serve<F, Fut>(listener: TcpListener, handler: F)
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let handler = Arc::new(handler);
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                let handler = handler.clone();
                req.extensions_mut().insert(ClientAddr(peer));
                async move { Ok::<_, Infallible>(call(handler.as_ref(), req).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Spawn `serve` on a free loopback port; returns `http://127.0.0.1:PORT` and the server task.
pub async fn spawn_on_loopback<F, Fut>(handler: F) -> (String, tokio::task::JoinHandle<()>)
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind a loopback port");
    let addr = listener
        .local_addr()
        .expect("local address of a bound listener");
    (
        format!("http://{addr}"),
        tokio::spawn(serve(listener, handler)),
    )
}

async fn call<F, Fut>(
    handler: &F,
    req: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<Full<Bytes>>
where
    F: Fn(Request) -> Fut,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    match to_lambda_request(req).await {
        // Its own task, so that a panic ends the task (a 500), not the connection.
        Ok(req) => match tokio::spawn(handler(req)).await {
            Ok(response) => to_hyper_response(response),
            Err(_) => hyper::Response::builder()
                .status(500)
                .body(Full::new(Bytes::from_static(b"internal error")))
                .unwrap_or_default(),
        },
        Err(()) => hyper::Response::builder()
            .status(413)
            .body(Full::new(Bytes::from_static(b"request body too large")))
            .unwrap_or_default(),
    }
}

/// The request as API Gateway would hand it to `lambda_http`: same method, URI, headers and body,
/// with the query string parameters extension filled in.
pub async fn to_lambda_request(req: hyper::Request<hyper::body::Incoming>) -> Result<Request, ()> {
    let (parts, body) = req.into_parts();
    let bytes = Limited::new(body, MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|_| ())?
        .to_bytes();
    let body = if bytes.is_empty() {
        Body::Empty
    } else {
        match String::from_utf8(bytes.to_vec()) {
            Ok(text) => Body::Text(text),
            Err(e) => Body::Binary(e.into_bytes()),
        }
    };
    let query: std::collections::HashMap<String, Vec<String>> = parts
        .uri
        .query()
        .map(|q| {
            let mut map = std::collections::HashMap::<String, Vec<String>>::new();
            for (k, v) in form_urlencoded::parse(q.as_bytes()) {
                map.entry(k.into_owned()).or_default().push(v.into_owned());
            }
            map
        })
        .unwrap_or_default();
    let request = Request::from_parts(parts, body);
    Ok(request.with_query_string_parameters(query))
}

fn to_hyper_response(resp: Response<Body>) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = resp.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text),
        Body::Binary(bin) => Bytes::from(bin),
        _ => Bytes::new(),
    };
    hyper::Response::from_parts(parts, Full::new(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_gets_a_500_and_the_server_keeps_serving() {
        let (base, server) = spawn_on_loopback(|req: Request| async move {
            assert_ne!(req.uri().path(), "/boom", "handler bug");
            lambda_http::Response::new(Body::from("ok"))
        })
        .await;
        let boom = reqwest::get(format!("{base}/boom")).await.unwrap();
        assert_eq!(boom.status(), 500);
        let ok = reqwest::get(format!("{base}/fine")).await.unwrap();
        assert_eq!(ok.status(), 200);
        server.abort();
    }
}
