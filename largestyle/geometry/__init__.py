"""Pure geometry: pyramid level sizes, print sizes and the output frame, halo tiles, the blend grid and its accumulator."""
