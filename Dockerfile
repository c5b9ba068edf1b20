# syntax=docker/dockerfile:1
# The controller image: `blis` built in a Rust stage, run from distroless (glibc, no shell, no package
# manager) as the non-root user 65532. `helm install` runs it with `controller` arguments (charts/blis);
# the same image runs `blis gate` in CI. tests/it/ship.rs checks the binary path, user and entrypoint.
FROM docker.io/library/rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin blis \
 && install -m 0755 target/release/blis /blis

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /blis /blis
USER 65532:65532
ENTRYPOINT ["/blis"]
CMD ["controller"]
