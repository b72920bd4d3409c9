-- Identity keys (FEP-c390): a local account's Ed25519 seed (base64) and, on its actor, the
-- `did:key` and the signed identity statement the actor document carries; for remote actors,
-- the `did:key` of a statement that verified. Two actors with the same `identity_did` are the
-- same person, which is what a move from a server that is gone relies on.
ALTER TABLE accounts ADD COLUMN identity_seed TEXT;
ALTER TABLE actors ADD COLUMN identity_did TEXT;
ALTER TABLE actors ADD COLUMN identity_proof TEXT;
