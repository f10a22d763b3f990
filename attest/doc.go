// Package attest makes the evidence an image carries beside it: a software bill of
// materials (SPDX 2.3 or CycloneDX 1.6 JSON) of the Python distributions and Debian
// packages the image holds, and in-toto statements of its provenance (SLSA v1) and of its
// smoke test, each attached to the image as an OCI referrer (an artifact manifest whose
// subject is the image) in a registry or an OCI layout. Nothing here signs them.
//
// What an image holds is read from its layers' tars, as an overlay of them shows it, and
// never by running anything in it. Each layer's findings are kept in a cache by the
// layer's digest, so a rebuild reads only the layers it made anew. The same image gives
// the same documents, byte for byte.
package attest
