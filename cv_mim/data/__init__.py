"""On-disk formats: Human3.6M (VideoPose3D layout), Penn Action, NTU RGB+D, and the synthetic world."""
