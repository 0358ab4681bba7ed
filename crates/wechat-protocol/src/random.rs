//! The operating system's random source, behind one error: sign-in states and browser bindings,
//! safe mode's 16-byte prefixes, nonces.

/// The operating system's random source failed; nothing that must be unguessable can be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the random number source failed")]
pub struct RandomUnavailable;

/// `N` bytes from the operating system's random source.
pub fn bytes<const N: usize>() -> Result<[u8; N], RandomUnavailable> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|_| RandomUnavailable)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_draws_differ() {
        assert_ne!(bytes::<32>().unwrap(), bytes::<32>().unwrap());
    }
}
