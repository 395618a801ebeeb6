"""Bridges to other pose tools, one small module each, loaded only when used.

* :mod:`skelstore.interop.sleap`: SLEAP ``.slp`` export and import of whatever
  sleap-io reads (``skelstore[sleap]``);
* :mod:`skelstore.interop.nwb`: NWB with ndx-pose (``skelstore[nwb]``);
* :mod:`skelstore.interop.posefile`: pose-format's ``.pose`` (``skelstore[pose]``).

:mod:`skelstore.export` names each export target in its dispatch table; nothing
here imports a third-party package before its function runs.
"""
