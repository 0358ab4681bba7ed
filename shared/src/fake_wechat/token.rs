//! Fake `GET /cgi-bin/token` and `POST /cgi-bin/stable_token`.

use super::{FakeRequest, FakeResponse, FakeState};

/// Tokens issued so far and the stable-token bookkeeping.
#[derive(Debug, Default)]
pub struct TokenState {}

pub fn handle(_state: &FakeState, _req: &FakeRequest) -> Option<FakeResponse> {
    None
}
