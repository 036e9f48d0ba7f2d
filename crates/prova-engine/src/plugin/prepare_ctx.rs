//! What plugins may look at while they prepare.

use std::path::Path;

pub use crate::files_root::DescriptorFile;

/// What plugins may look at while preparing: where the descriptor lives,
/// so relative file names resolve against it.
#[derive(Debug, Clone, Default)]
pub struct PrepareCtx<'a> {
    pub descriptor_dir: Option<&'a Path>,
    /// When set (the server), files named in descriptors must lie under it.
    pub files_root: Option<&'a Path>,
}

impl PrepareCtx<'_> {
    /// Resolves a file named in a descriptor: relative to the descriptor's
    /// folder (or the files root), and never outside the files root. The
    /// check opens the file beneath the root as [`Self::file`] does (a
    /// symlink leading out is refused); a caller that reads the file later
    /// should keep a [`DescriptorFile`] and open it then, not this path.
    pub fn resolve(&self, file: &str) -> Result<std::path::PathBuf, String> {
        let f = self.file(file)?;
        if self.files_root.is_some() {
            f.open()?;
        }
        Ok(f.display_path())
    }

    /// A file named in a descriptor, to be opened (beneath the files root,
    /// when there is one) at the moment it is read.
    pub fn file(&self, file: &str) -> Result<DescriptorFile, String> {
        DescriptorFile::new(file, self.descriptor_dir, self.files_root)
    }
}

impl PrepareCtx<'_> {
    /// Resolves a file a plugin will write (the `junit` reporter's `File`):
    /// with a files root, beneath it (relative names against the
    /// descriptor's folder, else the root; `..`, absolute paths and links
    /// leading out refused, checked again when the file is written);
    /// without one, relative to the descriptor's folder.
    pub fn resolve_output(&self, file: &str) -> Result<crate::output_file::OutputFile, String> {
        match self.files_root {
            Some(root) => crate::output_file::OutputFile::beneath(file, self.descriptor_dir, root),
            // As files read are: relative to the descriptor's folder, so a
            // job writes the same place whatever folder it is run from.
            None => Ok(crate::output_file::OutputFile::ambient(
                prova_core::descriptor::resolve_relative(self.descriptor_dir, file),
            )),
        }
    }
}
