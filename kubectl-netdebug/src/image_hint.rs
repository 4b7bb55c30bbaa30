//! What to do when the nodes cannot pull the probe image: without a registry (kind, a lab
//! cluster, an air-gapped one) the fix is `kubectl netdebug image load`, which the kubelet's
//! own message never says.

/// Waiting reasons that mean the node has not got the image and could not fetch it.
/// `ErrImageNeverPull` is one too: `--image-pull-policy Never` with an image never loaded.
pub const PULL_FAILURE_REASONS: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
];

/// The hint for a run whose probe `image` could not be pulled.
pub fn pull_hint(image: &str) -> String {
    format!(
        "this cluster cannot pull {image}. Without a registry, load it: kubectl netdebug image \
         load --kind CLUSTER (or --containerd SOCKET / --out FILE), then rerun with the --image \
         it prints."
    )
}

/// The kubelet's `message` for a container stuck with `reason`, followed on its own line by
/// the hint when the reason is a pull failure.
pub fn with_pull_hint(reason: &str, message: String, image: &str) -> String {
    if PULL_FAILURE_REASONS.contains(&reason) {
        format!("{message}\n{}", pull_hint(image))
    } else {
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_failures_get_the_hint_others_do_not() {
        for reason in PULL_FAILURE_REASONS {
            let m = with_pull_hint(reason, "not found".into(), "r.example/p:v1");
            assert_eq!(
                m,
                "not found\nthis cluster cannot pull r.example/p:v1. Without a registry, load \
                 it: kubectl netdebug image load --kind CLUSTER (or --containerd SOCKET / --out \
                 FILE), then rerun with the --image it prints."
            );
        }
        assert_eq!(
            with_pull_hint("CreateContainerError", "no such file".into(), "x:v1"),
            "no such file"
        );
        // Every pull failure ends the wait at once (wait.rs).
        for reason in PULL_FAILURE_REASONS {
            assert!(
                crate::wait::FATAL_WAITING_REASONS.contains(reason),
                "{reason}"
            );
        }
    }
}
