//! Which image a run uses, pinned to an image id before the container is
//! created, so that a tag moved in between cannot swap the code.

use bollard::Docker;

/// Resolves `image` to the id of a local image.
///
/// - `name@sha256:DIGEST`: the local image must carry that repo digest;
/// - `sha256:ID` (or its unique prefix): that image id;
/// - `name[:tag]`: whatever the tag points at now.
///
/// Nothing is pulled: the image must be present.
pub async fn resolve(docker: &Docker, image: &str) -> Result<String, String> {
    let found = docker.inspect_image(image).await.map_err(|e| match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        } => format!("image {image} is not present on this Docker host; pull or build it first"),
        e => format!("cannot inspect image {image}: {e}"),
    })?;
    let id = found.id.ok_or_else(|| format!("image {image} has no id"))?;
    if let Some((_, digest)) = image.split_once('@') {
        let pinned = found
            .repo_digests
            .unwrap_or_default()
            .iter()
            .any(|d| d.ends_with(&format!("@{digest}")));
        if !pinned {
            return Err(format!(
                "image {image}: the local image does not carry digest {digest}"
            ));
        }
    } else if image.starts_with("sha256:") && !id.starts_with(image) {
        return Err(format!("image {image} resolved to a different id {id}"));
    }
    Ok(id)
}
