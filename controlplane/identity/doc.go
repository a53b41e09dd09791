// Package identity holds the rules of who someone is and what they may
// present: personal API tokens (minting, hashing, scopes, lifetimes, the
// coalesced record of their last use), password policy, how often an
// unauthenticated client may start a sign-in (StartLimiter), how many
// wrong passwords an account or an address may try (LoginThrottle), and
// which address a request comes from behind trusted proxies
// (LoginThrottle.ClientIP). The REST handlers and the dashboard call it;
// it knows nothing of HTTP routing.
package identity
