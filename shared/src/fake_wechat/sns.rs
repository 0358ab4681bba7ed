//! Fake web authorization: `/connect/oauth2/authorize` (consent page) and the `/sns/*` endpoints.

use super::{FakeRequest, FakeResponse, FakeState};

/// Codes, sns tokens and users known to the fake.
#[derive(Debug, Default)]
pub struct SnsState {}

pub fn handle(_state: &FakeState, _req: &FakeRequest) -> Option<FakeResponse> {
    None
}
