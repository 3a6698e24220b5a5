//! The labels of images, read once per image id: an image id names its
//! content, so its labels never change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use bollard::Docker;

use crate::error::{status_of, DockerError};

/// The most image ids remembered; the cache starts over when full.
const CACHE_MAX: usize = 4096;

/// An image's labels; `None` when the image no longer exists.
pub(crate) type ImageLabels = Option<Arc<HashMap<String, String>>>;

fn cache() -> &'static Mutex<HashMap<String, ImageLabels>> {
    static CACHE: OnceLock<Mutex<HashMap<String, ImageLabels>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The labels of image `id` (`Config.Labels` of `GET /images/{id}/json`),
/// or `None` when Docker no longer knows the image.
pub(crate) async fn labels(docker: &Docker, id: &str) -> Result<ImageLabels, DockerError> {
    if let Some(hit) = cache().lock().expect("image cache").get(id) {
        return Ok(hit.clone());
    }
    let found = match docker.inspect_image(id).await {
        Ok(img) => Some(Arc::new(
            img.config.and_then(|c| c.labels).unwrap_or_default(),
        )),
        Err(e) if status_of(&e) == Some(404) => None,
        Err(e) => return Err(DockerError::api(format!("inspect image {id}"), &e)),
    };
    let mut c = cache().lock().expect("image cache");
    if c.len() >= CACHE_MAX {
        c.clear();
    }
    c.insert(id.to_string(), found.clone());
    Ok(found)
}
