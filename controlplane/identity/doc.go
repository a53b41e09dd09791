// Package identity holds the rules of who someone is and what they may
// present: personal API tokens (minting, hashing, scopes, lifetimes, the
// coalesced record of their last use) and password policy. The REST
// handlers and the dashboard call it; it knows nothing of HTTP routing.
package identity
