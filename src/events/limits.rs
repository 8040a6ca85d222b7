//! Events: limits.

use super::*;

/// A connection past `server.max_connections`, closed at accept.
pub struct ConnectionRefused {
    pub peer: Option<SocketAddr>,
    pub max_connections: usize,
}

impl ConnectionRefused {
    pub fn emit(self) {
        crate::meters::connection_refused();
        let peer = self.peer.map(|p| p.to_string()).unwrap_or_default();
        line!(
            warn,
            "mfa_facade::limits",
            "connection_refused",
            "Connection refused: server.max_connections are open.",
            peer,
            max_connections = self.max_connections
        );
    }
}

/// `limits.redis.url` cannot be used at all.
pub struct RedisInvalid<'a> {
    pub redis: &'a str,
    pub error: &'a dyn Display,
}

impl RedisInvalid<'_> {
    pub fn emit(self) {
        line!(error, "mfa_facade::limits", "ratelimit_redis_invalid",
            "limits.redis.url is unusable; limits are decided in this process only.",
            redis = self.redis, error = %self.error);
    }
}

/// Redis answers: at start (`restored: false`) or back after a fallback.
pub struct RedisConnected<'a> {
    pub redis: &'a str,
    pub restored: bool,
}

impl RedisConnected<'_> {
    pub fn emit(self) {
        crate::meters::redis_fallback(false);
        let event = if self.restored {
            "ratelimit_redis_restored"
        } else {
            "ratelimit_redis_connected"
        };
        line!(
            info,
            "mfa_facade::limits",
            event,
            "Rate limits are decided in Redis, for the whole fleet.",
            redis = self.redis
        );
    }
}

/// Redis is unavailable: limits are decided in this process. `started`:
/// it was answering until now (the fallbacks counter counts these).
pub struct RedisFallback<'a> {
    pub redis: &'a str,
    pub reason: &'a str,
    pub started: bool,
}

impl RedisFallback<'_> {
    pub fn emit(self) {
        if self.started {
            crate::meters::redis_fallback_started();
        }
        crate::meters::redis_fallback(true);
        line!(
            warn,
            "mfa_facade::limits",
            "ratelimit_fallback",
            "Redis is unavailable; rate limits are decided in this process until it is back.",
            redis = self.redis,
            reason = self.reason
        );
    }
}
