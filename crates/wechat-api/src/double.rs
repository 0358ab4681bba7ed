//! An in-process stand-in for WeChat's HTTP API, for domain tests where a server on loopback
//! adds nothing: it answers each request with what a closure returns and records the requests.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

use super::{ApiError, Pending, WeChatHttp, WeChatTransport, WireRequest, WireResponse};

type Answer = dyn Fn(&WireRequest) -> Result<WireResponse, ApiError> + Send + Sync;

/// Answers from a closure; every request is kept for the test to inspect.
pub struct InProcessWeChat {
    answer: Box<Answer>,
    requests: Mutex<Vec<WireRequest>>,
}

impl InProcessWeChat {
    pub fn new(
        answer: impl Fn(&WireRequest) -> Result<WireResponse, ApiError> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            answer: Box::new(answer),
            requests: Mutex::new(Vec::new()),
        })
    }

    /// A client whose calls this double answers.
    pub fn client(self: &Arc<Self>) -> WeChatHttp {
        WeChatHttp::with_transport(self.clone())
    }

    /// The requests made so far, oldest first.
    pub fn requests(&self) -> Vec<WireRequest> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// HTTP 200 with `body` (WeChat answers errors with 200 too).
pub fn ok(body: &str) -> Result<WireResponse, ApiError> {
    Ok(WireResponse {
        status: 200,
        body: Bytes::copy_from_slice(body.as_bytes()),
    })
}

impl WeChatTransport for InProcessWeChat {
    fn send(&self, request: WireRequest) -> Pending<'_> {
        let answer = (self.answer)(&request);
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(request);
        Box::pin(async move { answer })
    }
}
