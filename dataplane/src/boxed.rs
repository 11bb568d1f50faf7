//! Boxing a future without copying its room.
//!
//! A future that has not started holds only its arguments, but its type
//! has room for every state it can reach: the request future `dispatch`
//! builds is about 5 kB. `Box::pin(future)` builds the future on the stack
//! and then copies all of that room into the allocation, once per request
//! (about 0.6k instructions, callgrind). Allocating first and building the
//! future straight into the box lets the compiler write only what the
//! future holds.

use std::pin::Pin;

/// `Box::pin(make())`, with the allocation made before `make` runs so the
/// future is built in place (see the module docs).
#[inline(always)]
pub(crate) fn pin_in_place<F>(make: impl FnOnce() -> F) -> Pin<Box<F>> {
    let slot = Box::new_uninit();
    Box::into_pin(Box::write(slot, make()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The boxed future runs as `Box::pin`'s would.
    #[tokio::test]
    async fn runs_like_box_pin() {
        let room = [7u8; 4096];
        let boxed = pin_in_place(|| async move {
            tokio::task::yield_now().await;
            room.iter().map(|b| u32::from(*b)).sum::<u32>()
        });
        assert_eq!(boxed.await, 7 * 4096);
    }
}
