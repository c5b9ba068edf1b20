# syntax=docker/dockerfile:1
# The controller image: `blis` built in a Rust stage, run from distroless (glibc, no shell, no package
# manager) as the non-root user 65532. `helm install` runs it with `controller` arguments (charts/blis);
# the same image runs `blis gate` in CI. tests/it/ship.rs checks the binary path, user and entrypoint.
FROM docker.io/library/rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# The profile-guided release build (hack/release.sh: an instrumented build, its benchmark and example
# runs, the optimised build).
RUN hack/release.sh \
 && install -m 0755 target/pgo/blis /blis

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /blis /blis
USER 65532:65532
ENTRYPOINT ["/blis"]
CMD ["controller"]
