//! The end user's address on the public routes: what API Gateway saw (`sourceIp` in the request
//! context) or, on the local server, the socket's peer. The transport puts it in the request's
//! extensions as a [`ClientIp`] (the Lambda adapter, the local server's connection layer);
//! `X-Forwarded-For` and similar headers are never read: a client writes them.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::limits::ClientIp;

/// The client's address, if the transport told us one.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub Option<ClientIp>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Self(parts.extensions.get::<ClientIp>().copied()))
    }
}
