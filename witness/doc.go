// Package witness implements the C2SP tlog-witness protocol
// (https://c2sp.org/tlog-witness) and Ed25519 cosignature/v1 signatures
// (https://c2sp.org/tlog-cosignature) for checkpoints in the C2SP
// tlog-checkpoint format.
//
// A [Witness] is an http.Handler serving POST /add-checkpoint. For every log
// it is configured with, it keeps the size and root hash of the latest
// checkpoint it cosigned in a durable [Store], and cosigns a new checkpoint
// only if it carries a valid signature from the log and is consistent with
// that state. It therefore never cosigns two inconsistent views of one log,
// nor a smaller tree after a larger one, as long as its store survives.
//
// A [Client] submits checkpoints to a witness; [Policy] decides whether a
// checkpoint carries enough valid cosignatures to be published, and
// [MergeSignatures] adds cosignatures to a signed checkpoint.
package witness
