-- Token names were unique per namespace, so all user tokens (namespace '')
-- shared one set of names: a user making a token named like another user's
-- was told it exists. A user's token names are now unique for that user;
-- a service account's, within its namespace, as the REST API names them
-- (`/namespaces/NS/tokens/NAME`, read by that project's admins only).
ALTER TABLE tokens DROP CONSTRAINT tokens_namespace_name_key;
CREATE UNIQUE INDEX tokens_name_per_owner ON tokens (
    namespace,
    (CASE WHEN subject_kind = 'User' THEN subject_name ELSE '' END),
    name
);
