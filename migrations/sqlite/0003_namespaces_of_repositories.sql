-- A namespace that holds repositories is a project. Pushes by super users
-- used to create repositories without creating their namespace; give every
-- such repository its namespace, as 0002 did for repositories older than
-- namespaces. Idempotent: only namespaces missing are made.
INSERT INTO namespaces (name, uid, created_by, created_at)
SELECT substr(name, 1, instr(name || '/', '/') - 1), lower(hex(randomblob(16))), NULL, MIN(created_at)
FROM repositories
WHERE substr(name, 1, instr(name || '/', '/') - 1) NOT IN (SELECT name FROM namespaces)
GROUP BY substr(name, 1, instr(name || '/', '/') - 1);
UPDATE policy_version SET version = version + 1 WHERE id = 1;
