-- courier_found(n) returns n, or raises no_data_found (SQLSTATE P0002) when
-- n is 0. A secret's delete sends its COMMIT in the same batch as the
-- DELETE (see secrettx.go), so the check that the secret existed must
-- abort the transaction on the server: a statement that fails makes
-- PostgreSQL skip the rest of the batch, COMMIT included.
CREATE OR REPLACE FUNCTION courier_found(n bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
	IF n = 0 THEN
		RAISE EXCEPTION 'not found' USING ERRCODE = 'no_data_found';
	END IF;
	RETURN n;
END
$$;
