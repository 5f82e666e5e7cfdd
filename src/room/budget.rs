//! One client's frame budget across leaves, rejoins and resumes (docs/access.md, "Frames").
//!
//! Everything one client makes the room send to the other peer comes out of its slot's rate
//! bucket: the messages it relays, and the lifecycle frames its own actions cause. So in any
//! window `t` that is at most `RATE_LIMIT_BURST + RATE_LIMIT_PER_SEC × t` frames:
//! - A slot released while somebody stays in the room leaves its bucket behind under the
//!   client's key (a keyed hash of its ticket identity, or of its address without tickets),
//!   and a fresh join under that key starts from it. Once full again a kept bucket is the same
//!   as a new one and is dropped; an emptied room has nobody to protect and keeps none.
//! - A fresh join beside another occupant costs [`JOIN_COST`] (its `peer-joined` and `ready`),
//!   and is refused with `rate-limited` and 4429 when the bucket cannot pay, unless the bucket
//!   is full.
//! - The `peer-left` of a leave, a close or a timeout costs one token, which may leave the
//!   bucket in debt: a leave is never refused, and the debt is repaid before the next join or
//!   message. A window can so end one frame over the budget, never more.
//! - A drop told to the peer costs [`DROP_COST`] (`peer-away` and the `peer-joined` of the
//!   return). A bucket that cannot pay leaves the drop untold: the peer hears of neither.
//! - A resume that is not the return of a told drop costs one token for its `peer-joined`,
//!   which is withheld when the bucket is empty.

use super::{Ctx, RoomState};
use crate::rate::RateLimiter;
use crate::room_state::KeptBucket;
use crate::ticket::Identity;
use crate::token::{hash, to_hex};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Most buckets one room keeps for clients who left; beyond it the oldest goes.
pub const MAX_KEPT: usize = 8;
/// What a fresh join beside another occupant costs: `peer-joined` and `ready`.
pub const JOIN_COST: u32 = 2;
/// What a drop told to the peer costs: `peer-away`, and `peer-joined` when it returns.
pub const DROP_COST: u32 = 2;
/// Bytes of a key: enough that two clients of one room never share one by chance.
const KEY_BYTES: usize = 16;

impl RoomState {
    /// The key whose budget an arrival spends: its identity with tickets, else its address.
    /// Arrivals without an address (a local runtime sets none) share one key, as clients
    /// behind one address do. `seed` is fresh randomness for the room's first key.
    pub(super) fn budget_key(
        &mut self,
        identity: Option<&Identity>,
        address: Option<&str>,
        seed: &str,
    ) -> Option<String> {
        let (kind, value) = match identity {
            Some(identity) => ("sub", identity.sub.as_str()),
            None => ("ip", address.unwrap_or_default()),
        };
        if self.salt.is_empty() {
            // Hashed under its own label: the seed's other uses reveal nothing of the salt.
            self.salt = hash(&format!("duet-budget-salt:{seed}"));
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(self.salt.as_bytes()).ok()?;
        mac.update(kind.as_bytes());
        mac.update(b":");
        mac.update(value.as_bytes());
        Some(to_hex(&mac.finalize().into_bytes()[..KEY_BYTES]))
    }

    /// The bucket a fresh join under `key` would start from, left where it is.
    pub(super) fn bucket_for(&self, ctx: Ctx, key: Option<&str>) -> RateLimiter {
        key.and_then(|key| self.kept.iter().find(|k| k.key == key))
            .map(|k| k.bucket.clone())
            .unwrap_or_else(|| RateLimiter::new(ctx.config.rate_limit_burst, ctx.now))
    }

    /// Charges a fresh join for what it will send the other occupant, if there is one.
    /// `false`: the bucket cannot pay, and the join is refused. The bucket under `key` is
    /// taken out of the kept ones either way once the join pays.
    pub(super) fn pay_for_join(
        &mut self,
        ctx: Ctx,
        key: Option<&str>,
        bucket: &mut RateLimiter,
    ) -> bool {
        let (burst, rate) = (ctx.config.rate_limit_burst, ctx.config.rate_limit_per_sec);
        if !self.slots.is_empty() {
            let full = bucket.is_full(ctx.now, burst, rate);
            if !full && !bucket.has(JOIN_COST, ctx.now, burst, rate) {
                return false;
            }
            bucket.spend(JOIN_COST, ctx.now, burst, rate);
        }
        if let Some(key) = key {
            self.kept.retain(|k| k.key != key);
        }
        true
    }

    /// Takes `cost` from `bucket` if it holds that much.
    pub(super) fn try_pay(ctx: Ctx, bucket: &mut RateLimiter, cost: u32) -> bool {
        let (burst, rate) = (ctx.config.rate_limit_burst, ctx.config.rate_limit_per_sec);
        let paid = bucket.has(cost, ctx.now, burst, rate);
        if paid {
            bucket.spend(cost, ctx.now, burst, rate);
        }
        paid
    }

    /// Keeps the bucket of a slot just released, for its client's next join, while somebody
    /// stays in the room; drops the kept buckets that are full again.
    pub(super) fn keep_bucket(
        &mut self,
        ctx: Ctx,
        key: Option<String>,
        bucket: Option<RateLimiter>,
    ) {
        if self.slots.is_empty() {
            self.kept.clear();
            return;
        }
        let (burst, rate) = (ctx.config.rate_limit_burst, ctx.config.rate_limit_per_sec);
        self.kept
            .retain_mut(|k| !k.bucket.is_full(ctx.now, burst, rate));
        let (Some(key), Some(mut bucket)) = (key, bucket) else {
            return;
        };
        if bucket.is_full(ctx.now, burst, rate) {
            return;
        }
        self.kept.retain(|k| k.key != key);
        self.kept.push(KeptBucket { key, bucket });
        if self.kept.len() > MAX_KEPT {
            self.kept.remove(0);
        }
    }
}
