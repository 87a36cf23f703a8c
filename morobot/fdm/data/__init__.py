"""FDM data: collection in simulation, the dataset format, merging, rosbag2 conversion, synthetic data."""
