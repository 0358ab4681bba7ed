//! The jsapi_ticket as its consumers see it: the token service keeps it next to the
//! access_token (same lease, quota and compare-and-swap writes) and reports its refreshes
//! ([`TicketReport`]), and pages get it through a [`TicketSource`].

use std::future::Future;
use std::sync::Arc;

use wechat_protocol::secret::Secret;

use super::{RefreshOutcome, TokenError};

/// A jsapi_ticket and when it expires. `Debug` never shows the ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsapiTicket {
    pub value: Secret<String>,
    pub expires_at_ms: i64,
}

/// A jsapi_ticket refresh's outcome and the ticket current afterwards (`None` when none is left
/// unexpired).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketReport {
    pub outcome: RefreshOutcome,
    pub ticket: Option<JsapiTicket>,
}

/// Where jsapi_tickets come from: the token service in process (refresh function, local server,
/// tests), or the table plus the refresh function by Lambda Invoke (every other function).
pub trait TicketSource: Send + Sync {
    /// A usable jsapi_ticket (more than [`super::MIN_REMAINING_MS`] left), fetched once
    /// centrally if none is stored.
    fn jsapi_ticket(&self) -> impl Future<Output = Result<JsapiTicket, TokenError>> + Send;
}

impl<T: TicketSource> TicketSource for Arc<T> {
    fn jsapi_ticket(&self) -> impl Future<Output = Result<JsapiTicket, TokenError>> + Send {
        (**self).jsapi_ticket()
    }
}
