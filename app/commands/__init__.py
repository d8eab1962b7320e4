"""The work of each command (upgrade, downgrade, stamp, restore, status, backup listing), each in
one locked transaction; printing is the interfaces' business."""
