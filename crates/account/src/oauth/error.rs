//! Why a request to `/oauth/authorize`, `/oauth/me` or `/oauth/logout` did not get what it asked
//! for ([`OAuthError`]), mapped once to an HTTP status, a JSON code and a log level. The
//! callback's paths are outcomes of their own (`callback::CallbackOutcome`).

use lambda_http::http::StatusCode;
use table::StoreError;
use wechat_protocol::random::RandomUnavailable;

use crate::oauth::return_to::ReturnToError;

/// Why a request was refused or failed. `status` is the one place these map to HTTP; the route
/// decides whether the body is a page, plain text or JSON.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("scope must be snsapi_base or snsapi_userinfo")]
    InvalidScope,
    #[error(transparent)]
    InvalidReturnTo(#[from] ReturnToError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Random(#[from] RandomUnavailable),
    #[error("a freshly generated state already exists")]
    StateCollision,
    #[error("not signed in: {0}")]
    NotSignedIn(&'static str),
    #[error("cross-origin request refused")]
    CrossOrigin,
}

impl OAuthError {
    pub fn status(&self) -> StatusCode {
        match self {
            OAuthError::InvalidScope | OAuthError::InvalidReturnTo(_) => StatusCode::BAD_REQUEST,
            OAuthError::CrossOrigin => StatusCode::FORBIDDEN,
            OAuthError::NotSignedIn(_) => StatusCode::UNAUTHORIZED,
            OAuthError::Store(_) | OAuthError::Random(_) | OAuthError::StateCollision => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    /// A stable machine-readable name for JSON answers.
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::NotSignedIn(_) => "not_signed_in",
            OAuthError::CrossOrigin => "cross_origin",
            OAuthError::Store(_) => "unavailable",
            _ => "error",
        }
    }

    /// The request's one log line: an error when our side failed, else a refusal.
    pub fn log(&self) {
        let status = self.status().as_u16();
        match self {
            OAuthError::Store(_) | OAuthError::Random(_) | OAuthError::StateCollision => {
                tracing::error!(status, error = %self, "oauth request failed")
            }
            _ => tracing::info!(status, error = %self, "oauth request refused"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_own_failures_are_unavailable() {
        assert_eq!(OAuthError::InvalidScope.status(), StatusCode::BAD_REQUEST);
        assert_eq!(OAuthError::CrossOrigin.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            OAuthError::NotSignedIn("no session").status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            OAuthError::StateCollision.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            OAuthError::NotSignedIn("no session").code(),
            "not_signed_in"
        );
        assert_eq!(OAuthError::CrossOrigin.code(), "cross_origin");
        assert_eq!(OAuthError::InvalidScope.code(), "error");
    }
}
