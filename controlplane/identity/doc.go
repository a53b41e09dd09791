// Package identity holds the rules of who someone is and what they may
// present: personal API tokens (minting, hashing, scopes, lifetimes, the
// coalesced record of their last use), password policy, how often an
// unauthenticated client may start a sign-in (StartLimiter), how many
// wrong passwords an account or an address may try (LoginThrottle),
// which address a request comes from behind trusted proxies
// (LoginThrottle.ClientIP), and which user a verified single sign-on
// identity becomes (SSOAccounts: the linked one, one linked by e-mail, or
// a new one; the allowed domains and the admin group). The REST handlers
// and the dashboard call it; it knows nothing of HTTP routing.
package identity
