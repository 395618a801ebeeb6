"""The HDF5 engine: h5py behind the storage interface.

Local files are opened by h5py directly, with skelshop's settings (``libver``
earliest..v110, a 16 MiB chunk cache). Other fsspec URLs are read through an
fsspec file object, and written to a local temporary file that is uploaded as one
object when the root is closed (h5py cannot write to object storage, and readers
must never see a partial file).

The engine is a package, a module per concern: ``engine`` (guessing, opening
local and remote files, wrapping), ``files`` (local files: modes, locks),
``groups`` and ``arrays`` (the nodes), ``attrs``, ``encoding`` (presets as h5py
keywords), ``errors`` (h5py's errors and the failed-write guard) and ``direct``
(Blosc chunks compressed on threads and written directly).
"""

from skelstore.backends.hdf5.arrays import HDF5Array, chunk_byte_ranges
from skelstore.backends.hdf5.encoding import encoding_kwargs
from skelstore.backends.hdf5.engine import HDF5Engine
from skelstore.backends.hdf5.groups import HDF5Group

__all__ = ["HDF5Array", "HDF5Engine", "HDF5Group", "chunk_byte_ranges", "encoding_kwargs"]
