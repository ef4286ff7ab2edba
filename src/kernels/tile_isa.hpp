#pragma once
// The instruction set the tile products use (tile_products_isa()), for the kernels compiled per instruction set
// beside them.
namespace unmix {

enum class TileIsa { baseline, avx2, avx512 };
TileIsa tile_isa();

} // namespace unmix
