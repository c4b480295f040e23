"""Generated gRPC code for the chat4all.v1 protos (scripts/gen_protos.sh; do not edit)."""
